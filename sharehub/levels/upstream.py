"""The level above, as the rest of the hub calls it (`client`, `requests`, `sync`, `objections`, `relay`)."""

from sharehub.levels.client import (
    CATALOGUE_SECONDS,
    RELAYED_MODES,
    NotConfigured,
    Reach,
    Refused,
    Unreachable,
    Upstream,
    catalogue,
)
from sharehub.levels.objections import list_objections, object_upstairs
from sharehub.levels.relay import reach, record_key, relay_bulk, relay_query, relay_verify
from sharehub.levels.requests import (
    RULE,
    UPSTREAM_STATES,
    UpstreamState,
    contest,
    decline,
    file_request,
    forward,
    list_requests,
    withdraw,
)
from sharehub.levels.sync import Synced, sync

__all__ = [
    "CATALOGUE_SECONDS",
    "RELAYED_MODES",
    "RULE",
    "UPSTREAM_STATES",
    "NotConfigured",
    "Reach",
    "Refused",
    "Synced",
    "Unreachable",
    "Upstream",
    "UpstreamState",
    "catalogue",
    "contest",
    "decline",
    "file_request",
    "forward",
    "list_objections",
    "list_requests",
    "object_upstairs",
    "reach",
    "record_key",
    "relay_bulk",
    "relay_query",
    "relay_verify",
    "sync",
    "withdraw",
]
