"""The upper-level platform's API, reached with this platform office's key: one pooled HTTP client per
process, its catalogue remembered for a minute, and its refusals and silences told apart."""

from __future__ import annotations

import atexit
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from sharehub.errors import NotFound
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub

log = logging.getLogger(__name__)


RELAYED_MODES = ("verification", "query", "bulk")


CATALOGUE_SECONDS = 60.0  # how long the upper level's catalogue is remembered between calls


class NotConfigured(NotFound):
    """This platform has no upper level configured."""


class Unreachable(Exception):
    """The upper-level platform did not answer."""


class Refused(Exception):
    """The upper-level platform answered with an error: its status and its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Reach:
    """What one consumer may do with one upper-level resource in one mode: its newest granted request in
    that mode (the fields of that one, whose grant upstairs the relayed call names), and whether any of
    its live requests grants query (the right to tell a missing record from a mismatch)."""

    request_id: int
    grant_id: int  # the upper level's grant behind the request, named on every relayed call
    fields: frozenset[str]
    modes: frozenset[str]
    purpose: str


@functools.cache
def _client() -> httpx.Client:
    """One HTTP client per process, so relayed calls reuse their connections (it is safe across threads);
    closed when the process exits, with the connections it keeps."""
    client = httpx.Client()
    atexit.register(client.close)
    return client


class Upstream:
    """The upper-level platform's API, called with this platform office's key."""

    def __init__(self, hub: Hub) -> None:
        settings = hub.settings
        if not settings.upstream_url:
            raise NotConfigured(
                "this platform has no upper-level platform configured (SHAREHUB_UPSTREAM_URL, SHAREHUB_UPSTREAM_KEY)"
            )
        self.url = settings.upstream_url.rstrip("/")
        self.name = settings.upstream_name
        self._headers = {"Authorization": f"Bearer {settings.upstream_key.get_secret_value()}"}
        self._timeout = settings.upstream_timeout_seconds

    def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, grant: int | None = None
    ) -> httpx.Response:
        """One call (a serving call names the `grant` it is made under); Unreachable when the upper level
        does not answer (the address named, never the key)."""
        headers = self._headers if grant is None else {**self._headers, "X-Sharehub-Grant": str(grant)}
        try:
            return _client().request(
                method, self.url + path, json=json, params=params, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"{self.name} ({self.url}) did not answer {method} {path}: {exc}") from None

    def json(self, method: str, path: str, *, json: Any = None, params: Any = None, grant: int | None = None) -> Any:
        """The JSON of a successful call; Refused with the upper level's own reason otherwise."""
        return self.checked(self.call(method, path, json=json, params=params, grant=grant)).json()

    def checked(self, response: httpx.Response) -> httpx.Response:
        """The response of a successful call; Refused with the upper level's own reason otherwise."""
        if response.status_code >= 400:
            raise Refused(response.status_code, f"{self.name}: {_detail(response)}")
        return response


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(detail, list):  # a validation error: say where
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail)
    return str(detail or f"HTTP {response.status_code}")


_catalogues: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}


def catalogue(hub: Hub, *, fresh: bool = False) -> dict[str, dict[str, Any]]:
    """The upper level's catalogue, by resource id (remembered for a minute)."""
    up = Upstream(hub)
    found = _catalogues.get(up.url)
    if found is None or fresh or time.monotonic() - found[0] > CATALOGUE_SECONDS:
        entries = up.json("GET", "/catalogue")
        found = _catalogues[up.url] = (time.monotonic(), {e["id"]: e for e in entries})
    return found[1]


def _resource(hub: Hub, resource_id: str) -> dict[str, Any]:
    found = catalogue(hub).get(resource_id) or catalogue(hub, fresh=True).get(resource_id)
    if found is None:
        raise GrantError(f"{Upstream(hub).name} has no resource {resource_id!r} in its catalogue")
    return found
