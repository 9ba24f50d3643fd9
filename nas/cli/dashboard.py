"""``nas search dashboard``: optuna-dashboard on a store, without the database URL on its command line.

The URL (password included) goes to optuna-dashboard in a TOML file (its ``--from-config``) inside a private
temporary folder (mode 0700, file 0600), removed when the dashboard stops; ``ps`` shows only that file's path. A
busy port is found before the server starts; Ctrl-C or SIGTERM stop the server with the command (no orphan).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from nas.errors import NasError
from nas.util.secrets import shell_command

__all__ = ["DashboardError", "dashboard_executable", "serve_dashboard"]


class DashboardError(NasError):
    """The dashboard cannot start (busy port, bad address)."""


def dashboard_executable() -> list[str]:
    """The optuna-dashboard command installed beside this Python (else on PATH, else its module)."""
    script = Path(sys.executable).parent / "optuna-dashboard"
    if script.exists():
        return [str(script)]
    found = shutil.which("optuna-dashboard")
    if found:
        return [found]
    return [sys.executable, "-m", "optuna_dashboard._cli"]


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`DashboardError` unless ``host:port`` can be listened on now."""
    if not 0 < port < 65536:
        raise DashboardError(f"--port must be from 1 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise DashboardError(f"cannot listen on {host!r}: {err}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as err:
            raise DashboardError(f"cannot listen on {host}:{port}: {err.strerror or err} (another program uses "
                                 "it? choose another --port)") from None


def _toml_config(url: str, artifact_dir: Path) -> str:
    # TOML basic strings accept JSON's escapes, so json.dumps quotes any URL or path correctly
    return f"[optuna_dashboard]\nstorage = {json.dumps(url)}\nartifact_dir = {json.dumps(str(artifact_dir))}\n"


def serve_dashboard(url: str, artifact_dir: Path, *, host: str, port: int, display_url: str) -> int:
    """Run optuna-dashboard on the store ``url`` until it exits or is interrupted; its exit code (0 on Ctrl-C).

    Raises:
        DashboardError: the port is busy or the host cannot be listened on.
        KeyboardInterrupt: SIGTERM (``nas.cli.app.Terminated``), after the server was stopped.
    """
    check_port_free(host, port)
    folder = Path(tempfile.mkdtemp(prefix="nas-dashboard-"))  # 0700
    try:
        config = folder / "dashboard.toml"
        config.touch(mode=0o600)
        config.write_text(_toml_config(url, artifact_dir))
        command = [*dashboard_executable(), "--from-config", str(config), "--host", host, "--port", str(port)]
        print(f"optuna-dashboard on http://{host}:{port}/ for {display_url} (Ctrl-C stops it)", file=sys.stderr)
        print(f"  {shell_command(command)}", file=sys.stderr)
        process = subprocess.Popen(command)
        try:
            return process.wait()
        except KeyboardInterrupt as stop:
            stop_process(process)
            if type(stop) is KeyboardInterrupt:  # Ctrl-C: the documented way to stop it
                return 0
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate ``process`` (SIGTERM, then SIGKILL after 10 s) and reap it; nothing if it already ended."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
