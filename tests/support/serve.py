"""`sharehub serve` in a process of its own, for tests that need the API as users run it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sharehub.settings import REPO_ROOT
from tests.support.seaweed import free_port


@dataclass
class Served:
    """Where the API answers; once it has stopped, what it printed."""

    url: str
    log: str = ""


@contextmanager
def sharehub_serve(environ: dict[str, str]) -> Iterator[Served]:
    """Start `sharehub serve` on a free port with this environment, wait until it answers, and stop it after."""
    port = free_port()
    with tempfile.TemporaryFile("w+") as output:  # a file, not a pipe: a full pipe would stall the server
        server = subprocess.Popen(
            [sys.executable, "-m", "sharehub", "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            env=environ,
            cwd=REPO_ROOT,
        )
        served = Served(f"http://127.0.0.1:{port}")
        try:
            answered = False
            for _ in range(300):
                if server.poll() is not None:  # it stopped: no point waiting
                    break
                try:
                    urllib.request.urlopen(f"{served.url}/health", timeout=2).close()
                    answered = True
                    break
                except OSError:
                    time.sleep(0.1)
            if not answered:
                output.seek(0)
                raise RuntimeError(f"sharehub serve did not answer on port {port}:\n{output.read()}")
            yield served
        finally:
            server.terminate()
            server.wait(timeout=30)
            output.seek(0)
            served.log = output.read()
