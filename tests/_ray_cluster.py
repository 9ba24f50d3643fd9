"""A real multi-node Ray cluster on loopback for tests: ``ray start --head`` plus ``ray start --address`` raylets,
1 CPU each, every port chosen free (so it never collides with another cluster on the machine), a temp dir of its
own per raylet (short, under /tmp: Ray's socket paths must stay under 108 bytes; one per node, as on separate
machines: a node's runtime-env agent deletes the job packages it no longer uses, which would pull the working
directory from under the other node's processes if they shared one); stopped through the PIDs this module started
(each ``ray start --block`` and, should one survive it, every
process it had spawned), never ``ray stop``. The head runs the dashboard, i.e. the job server (``ray[default]``),
unless ``dashboard=False`` (``benchmarks/utilization.py``: a search through the GCS needs no job server).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LoopbackCluster", "loopback_cluster"]


@dataclass(frozen=True)
class LoopbackCluster:
    """``address``: the GCS (``127.0.0.1:PORT``); ``job_server``: ``http://127.0.0.1:PORT`` (``""`` without the
    dashboard); ``env``: the environment the raylets run with."""

    address: str
    job_server: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_options() -> list[str]:
    names = ("node-manager-port", "object-manager-port", "metrics-export-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port")
    out = []
    for name in names:
        out += [f"--{name}", str(_free_port())]
    base = _worker_port_base()
    return out + ["--min-worker-port", str(base), "--max-worker-port", str(base + 400)]


def _worker_port_base() -> int:
    """The first of 401 worker ports, below the kernel's ephemeral range, where every :func:`_free_port` (and so
    every other port of the cluster) lies: a range inside it could take a port already given to another component
    (Ray then refuses to start: "trying to use a port number ... that is used by other components")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return random.Random().randrange(10000, max(10001, low - 401))


def _ray() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else "ray"


def _alive_nodes(address: str, env: dict[str, str], timeout: float) -> int:
    """Alive nodes of the cluster, asked by a fresh driver; 0 when it cannot tell within ``timeout`` (a connection
    attempt made while the head is still starting can hang: the caller then asks again)."""
    code = (f"import ray; ray.init(address='{address}', log_to_driver=False); "
            "print(len([n for n in ray.nodes() if n['Alive']]))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 0
    lines = out.stdout.strip().splitlines()
    return int(lines[-1]) if out.returncode == 0 and lines and lines[-1].isdigit() else 0


def _wait_for_nodes(address: str, nodes: int, env: dict[str, str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _alive_nodes(address, env, min(timeout, 45.0)) >= nodes:
            return
        time.sleep(1)
    raise RuntimeError(f"the loopback cluster at {address} did not reach {nodes} nodes in {timeout:g} s")


def _wait_for_job_server(url: str, timeout: float = 120) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise RuntimeError(f"the job server at {url} did not answer in {timeout:g} s")


@contextlib.contextmanager
def loopback_cluster(nodes: int, temp_dir: Path, env: dict[str, str] | None = None,
                     dashboard: bool = True) -> Iterator[LoopbackCluster]:
    """``nodes`` raylets with 1 CPU each on 127.0.0.1 (the first is the head, with the job server unless
    ``dashboard`` is false)."""
    import psutil

    env = dict(os.environ if env is None else env)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    port, dashboard_port = _free_port(), _free_port()
    address = f"127.0.0.1:{port}"
    cluster = LoopbackCluster(address, f"http://127.0.0.1:{dashboard_port}" if dashboard else "", env)
    started: list[subprocess.Popen[bytes]] = []
    temp_dir.mkdir(parents=True, exist_ok=True)
    ray_temps = [tempfile.mkdtemp(prefix="nasray-", dir="/tmp") for _ in range(nodes)]
    log = open(temp_dir / "ray_start.log", "ab")
    try:
        head = [_ray(), "start", "--head", "--block", "--port", str(port), "--num-cpus", "1", "--num-gpus", "0",
                "--temp-dir", ray_temps[0], "--node-ip-address", "127.0.0.1",
                *(["--include-dashboard=true", "--dashboard-host", "127.0.0.1", "--dashboard-port",
                   str(dashboard_port)] if dashboard else ["--include-dashboard=false"]),
                "--ray-client-server-port", str(_free_port()), *_port_options()]
        started.append(subprocess.Popen(head, stdout=log, stderr=log, env=env, start_new_session=True))
        _wait_for_nodes(address, 1, env)
        for index in range(1, nodes):
            worker = [_ray(), "start", "--block", "--address", address, "--num-cpus", "1", "--num-gpus", "0",
                      "--temp-dir", ray_temps[index],
                      "--node-ip-address", "127.0.0.1", *_port_options()]
            started.append(subprocess.Popen(worker, stdout=log, stderr=log, env=env, start_new_session=True))
        _wait_for_nodes(address, nodes, env)
        if dashboard:
            _wait_for_job_server(cluster.job_server)
        yield cluster
    finally:
        family: list[psutil.Process] = []
        for proc in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                family += psutil.Process(proc.pid).children(recursive=True)
        for proc in reversed(started):  # workers first, then the head
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        _, alive = psutil.wait_procs(family, timeout=20)
        for child in alive:  # processes of our raylets that outlived them: by PID
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        log.close()
        for folder in ray_temps:
            shutil.rmtree(folder, ignore_errors=True)
