"""The command line as a user meets it: the demo's summary, run errors without stack traces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharehub.settings import REPO_ROOT
from tests.support.serve import sharehub_serve

pytestmark = pytest.mark.slow  # each test starts sharehub in a process of its own


def _sharehub(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    environ.update({"SHAREHUB_HOME": str(home), "COLUMNS": "200", **env})
    return subprocess.run(
        [sys.executable, "-m", "sharehub", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=REPO_ROOT,
        timeout=600,
    )


def test_demo_prints_landed_stored_and_quarantined_per_resource(tmp_path: Path) -> None:
    done = _sharehub(tmp_path, "demo", "--persons", "3000", "--entities", "600", COLUMNS="320")
    assert done.returncode == 0, done.stderr[-3000:]
    resources = sorted(p.stem for p in (REPO_ROOT / "catalogue" / "resources").glob("*.yaml"))
    assert "xzsp.e_licence" in resources  # the e-licence base store (real-time) is in the demo too
    for rid in resources:
        line = next(ln for ln in done.stdout.splitlines() if rid in ln and "succeeded" in ln)
        landed, passed, quarantined = (int(x.replace(",", "")) for x in line.split("│")[3:6])
        assert landed == passed + quarantined and quarantined > 0 and passed > 0, line
    runs = _sharehub(tmp_path, "runs", "list")
    assert (
        runs.returncode == 0
        and "gongan.population" in runs.stdout
        and f"{len(resources)} of {len(resources)}, newest first" in runs.stdout
    )
    assert "0 of 0, newest first" in _sharehub(tmp_path, "runs", "list", "--status", "failed").stdout
    assert f"{len(resources)} rectification notice(s)" in done.stdout  # every department planted defects
    notices = _sharehub(tmp_path, "notices", "list", "--department", "gongan")
    assert "gongan.population" in notices.stdout and "open" in notices.stdout and "scjg" not in notices.stdout
    assert "quality" in notices.stdout
    lines = notices.stdout.splitlines()
    first_id = next(ln.split("│")[1].strip() for ln in lines if "gongan.population" in ln and "quality" in ln)
    shown = _sharehub(tmp_path, "notices", "show", first_id)
    assert "市公安局" in shown.stdout and "pending rows" in shown.stdout
    # The serving tour: real HTTP calls under grants, each with its outcome, and an intact audit chain.
    tour = done.stdout[done.stdout.index("serving, under grants") :]
    assert '"match": true' in tour and '"birth_date": false' in tour and "sha256 matches" in tour
    assert "403 no grant for wjw.health_record" in tour and "granted, notified" in tour
    assert "contested, coordination due" in tour and "referred to 市政府办公室" in tour
    assert "entries, intact" in tour
    key = next(w for w in tour.split() if w.startswith("shk_"))
    audit = _sharehub(tmp_path, "audit", "verify")
    assert audit.returncode == 0 and key not in audit.stdout


def test_unknown_resource_is_a_clean_error(tmp_path: Path) -> None:
    done = _sharehub(tmp_path, "run", "gongan.nope")
    assert done.returncode == 1
    assert "unknown resource 'gongan.nope'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_unreachable_source_is_reported_as_retryable_and_recorded(tmp_path: Path) -> None:
    done = _sharehub(
        tmp_path,
        "run",
        "scjg.legal_entity",
        SHAREHUB_CONNECTIONS='{"scjg_front": "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2"}',
    )
    assert done.returncode == 1
    assert "scjg.legal_entity failed (retryable)" in done.stderr
    assert "Traceback" not in done.stderr
    runs = _sharehub(tmp_path, "runs", "list")
    assert "failed" in runs.stdout
    assert "scjg.legal_entity source: cannot reach postgresql" in done.stderr


def test_consumer_keys_are_shown_once_and_stored_only_as_hashes(tmp_path: Path) -> None:
    made = _sharehub(tmp_path, "consumers", "add", "人社局待遇认证", "--department", "rsj")
    assert made.returncode == 0, made.stderr
    key = made.stdout.split("API key (shown once):")[1].split()[0]
    assert key.startswith("shk_")
    listed = _sharehub(tmp_path, "consumers", "list")
    assert "人社局待遇认证" in listed.stdout and key not in listed.stdout
    wrong = _sharehub(tmp_path, "consumers", "add", "x", "--department", "nowhere")
    assert wrong.returncode == 1 and "no department 'nowhere'" in wrong.stderr
    revoked = _sharehub(tmp_path, "consumers", "revoke", "1")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout


def test_the_access_log_of_sharehub_serve_shows_no_query_string(tmp_path: Path) -> None:
    """A query's key (an ID number) and a download link's signature travel in the query string; the
    server's access log keeps method, path and status, and neither of them."""
    import urllib.error
    import urllib.request

    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    environ["SHAREHUB_HOME"] = str(tmp_path)
    secret = "11010519491231002X"
    signature = "5" * 64
    with sharehub_serve(environ) as served:
        for path in (
            f"/query/gongan.population?id_number={secret}",
            f"/bulk/extracts/x/download?expires=1&sig={signature}",
        ):
            try:
                urllib.request.urlopen(served.url + path, timeout=5).close()
            except urllib.error.HTTPError as exc:
                assert exc.code in (401, 403, 404)
    log, port = served.log, served.url.rsplit(":", 1)[1]
    assert '"GET /query/gongan.population?… HTTP/1.1" 401' in log, log
    assert f"download links point at http://127.0.0.1:{port};" in log, log
    assert '"GET /bulk/extracts/x/download?… HTTP/1.1" 403' in log, log
    assert secret not in log and signature not in log


def test_the_api_starts_without_great_expectations() -> None:
    """Only the pipeline's gate needs Great Expectations; importing it took the API six seconds to start
    (and ~250 MB), because the notices imported two names and a helper from the gate."""
    probe = "import sys, api.app; print(sorted(m for m in sys.modules if m.startswith('great_expectations'))[:3])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout
