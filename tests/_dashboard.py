"""Shared by the tests that talk to a real optuna-dashboard over HTTP: start one on a free port, wait for it."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nas.cli.dashboard import stop_process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def dashboard_command() -> list[str]:
    """The optuna-dashboard executable installed beside this Python (the package has no ``__main__``)."""
    script = Path(sys.executable).parent / "optuna-dashboard"
    if script.exists():
        return [str(script)]
    found = shutil.which("optuna-dashboard")
    return [found] if found else [sys.executable, "-m", "optuna_dashboard._cli"]


@contextlib.contextmanager
def running_dashboard(db: str, artifact_dir: str | Path, log: Path, timeout: float = 60) -> Iterator[str]:
    """Start ``optuna-dashboard DB --artifact-dir DIR`` on a free port; yield its base URL once it answers."""
    port = free_port()
    with open(log, "wb") as out:  # a file, not a pipe: its request log can never fill a buffer and block it
        process = subprocess.Popen([*dashboard_command(), db, "--host", "127.0.0.1", "--port", str(port),
                                    "--artifact-dir", str(artifact_dir)], stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"optuna-dashboard exited {process.returncode}: {log.read_text()[-2000:]}")
            try:
                get_json(f"{base}/api/meta")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"optuna-dashboard did not answer within {timeout:.0f} s")
                time.sleep(0.25)
        yield base
    finally:
        stop_process(process)
