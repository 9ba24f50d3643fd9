"""The local Ray of a search dies with its driver, even on ``kill -9`` (issue 17, item 9; nas.search.reaper).

Before the fix, the raylet's dashboard agent and runtime-env agent outlived a ``kill -9`` of a plain ``nas search
run`` for good. The first test uses plain processes (no Ray) to show what is and is not stopped; the second kills
the driver of a real search and waits for every process of its Ray to go.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[3]
BOUND_S = 30  # the watcher polls every second and gives SIGTERM 5 s before SIGKILL


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def _gone(keys: set[tuple[int, float]], timeout: float) -> set[tuple[int, float]]:
    """Wait until no process of ``keys`` (pid, start time) lives; return those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = set()
        for pid, started in keys:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - started) < 1e-3:
                    alive.add((pid, started))
            except psutil.Error:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def _key(pid: int) -> tuple[int, float]:
    return pid, psutil.Process(pid).create_time()


DRIVER = textwrap.dedent("""
    import subprocess, sys, time
    from nas.search.reaper import reap_new_children

    before = subprocess.Popen(["sleep", "300"])            # started before the block: not watched
    with reap_new_children():
        root = subprocess.Popen([sys.executable, "-c",     # a "raylet": its child is started 1 s later
            "import subprocess, time; time.sleep(1); subprocess.Popen(['sleep', '301']); time.sleep(300)"])
    after = subprocess.Popen(["sleep", "302"])             # started after the block: not watched
    print(before.pid, root.pid, after.pid, flush=True)
    time.sleep(300)
""")


def test_kill_9_of_the_driver_stops_what_the_block_started_and_nothing_else(tmp_path: Path) -> None:
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=_env(),
                              cwd=tmp_path)
    bystanders: set[tuple[int, float]] = set()
    try:
        assert driver.stdout is not None
        before, root, after = map(int, driver.stdout.readline().split())
        bystanders = {_key(before), _key(after)}
        deadline = time.monotonic() + BOUND_S
        while not psutil.Process(root).children() and time.monotonic() < deadline:
            time.sleep(0.2)
        (grandchild,) = psutil.Process(root).children()
        time.sleep(2)  # the watcher looks every second
        watched = {_key(root), _key(grandchild.pid)}
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        assert _gone(watched, BOUND_S) == set()  # the root and its orphaned child are stopped
        assert _gone(bystanders, 0) == bystanders  # processes started outside the block live on
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid, _ in bystanders:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process table")
def test_kill_9_of_a_search_driver_leaves_no_process_of_its_ray(tmp_path: Path) -> None:
    """A plain ``nas search run`` (its own local Ray), killed with SIGKILL once its trials train: within the
    bound, no process of its Ray session remains (raylet, GCS, monitors, agents, workers)."""
    command = [sys.executable, "-m", "nas.cli.app", "search", "run", "--budget", "4", "--epochs", "3", "--scorers",
               "", "--db", f"sqlite:///{tmp_path / 's.db'}"]
    driver = subprocess.Popen(command, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    seen: set[tuple[int, float]] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            try:
                descendants = psutil.Process(driver.pid).children(recursive=True)
                for process in descendants:
                    seen.add((process.pid, process.create_time()))
                names = " ".join(" ".join(p.cmdline()) for p in descendants)
            except psutil.Error:
                names = ""
            if "DashboardAgent" in names and "RuntimeEnvAgent" in names and ("ImplicitFunc" in names
                                                                              or "train_trial" in names):
                break
            time.sleep(0.5)
        assert driver.poll() is None, "the search ended before its trials trained"
        assert any("raylet" in " ".join(psutil.Process(pid).cmdline()) for pid, _ in seen
                   if psutil.pid_exists(pid)), "no raylet among the driver's processes"
        time.sleep(2)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        left = _gone(seen, BOUND_S)
        assert left == set(), [(pid, " ".join(psutil.Process(pid).cmdline())[:80]) for pid, _ in left]
    finally:
        if driver.poll() is None:
            driver.kill()
        for pid, started in _gone(seen, 0):  # never leave the machine littered, whatever failed
            try:
                if abs(psutil.Process(pid).create_time() - started) < 1e-3:
                    psutil.Process(pid).kill()
            except psutil.Error:
                pass
