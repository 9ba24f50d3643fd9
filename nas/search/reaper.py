"""The local Ray a search starts dies with the search's driver, even when the driver is killed with SIGKILL.

``ray.init(address="local")`` starts the head's processes (GCS server, raylet, monitor, log monitor) as children of
the driver; they die with it (Ray gives them ``PR_SET_PDEATHSIG``), but the raylet's own children, the dashboard
agent and the runtime-env agent, do not: after ``kill -9`` of the driver they lived on, orphaned, for good (issue
17). Ray offers no option for this, so a small watcher process does it (:func:`reap_new_children`):

- it is started before ``ray.init`` and, until the driver sends (over a pipe) the list of its children that
  ``ray.init`` started, records the driver's new children itself (a driver killed during ``ray.init``, which
  takes 10 s on a loaded machine, is covered); each process by pid and start time, so a reused pid never counts;
- every second it records their descendants (agents, workers), again by pid and start time;
- when the pipe closes (the driver exited, however it ended) or when none of those head processes lives any more
  (``ray.shutdown``), it stops every recorded process still alive (SIGTERM, then SIGKILL after 5 s) and exits.

It only ever signals processes it recorded as started by this driver's Ray, never anything found by name.
Run as ``python -m nas.search.reaper`` by :func:`reap_new_children`; not meant to be run by hand.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["GRACE_S", "POLL_S", "reap_new_children"]

POLL_S = 1.0
"""Seconds between two looks at the watched processes' descendants."""
GRACE_S = 5.0
"""Seconds a process gets between SIGTERM and SIGKILL."""

_END = b"end\n"  # ends the driver's message after the block (its children then): later ones are not watched
_Key = tuple[int, float]  # (pid, start time): a process, never confused with a later one reusing its pid


@contextlib.contextmanager
def reap_new_children() -> Iterator[None]:
    """Have every process started in the block (the driver's new children, e.g. by ``ray.init``) and all their
    descendants stopped when this process exits, even by SIGKILL, or when those children are all gone.

    The watcher's pipe end stays open in this process until it exits (deliberately never closed: its closing is
    the signal). Where psutil or a subprocess cannot be had, the block runs unwatched.
    """
    import psutil

    try:
        me = psutil.Process()
        before = {child.pid for child in me.children()}
        read_end, write_end = os.pipe()
        watcher = subprocess.Popen([sys.executable, "-m", "nas.search.reaper", str(me.pid), *map(str, before)],
                                   stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   close_fds=True)
        os.close(read_end)
    except (OSError, psutil.Error):
        yield
        return
    try:
        yield
    finally:
        lines = []  # the block's children, as the driver saw them: they replace what the watcher guessed
        for child in me.children():
            if child.pid not in before and child.pid != watcher.pid:
                with contextlib.suppress(psutil.Error):
                    lines.append(f"{child.pid} {child.create_time()!r}\n")
        with contextlib.suppress(OSError):
            os.write(write_end, "".join(lines).encode() + _END)


def _alive(key: _Key) -> bool:
    import psutil

    try:
        return abs(psutil.Process(key[0]).create_time() - key[1]) < 1e-3
    except psutil.Error:
        return False


def _descendants(roots: set[_Key]) -> set[_Key]:
    """The live descendants of the live ``roots`` (one scan of the process table)."""
    import psutil

    children: dict[int, list[psutil.Process]] = {}
    for process in psutil.process_iter(["ppid"]):
        children.setdefault(process.info["ppid"], []).append(process)
    found: set[_Key] = set()
    todo = [key[0] for key in roots if _alive(key)]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                key = (child.pid, child.create_time())
            except psutil.Error:
                continue
            if key not in found:
                found.add(key)
                todo.append(child.pid)
    return found


def _stop(keys: set[_Key]) -> None:
    """SIGTERM every live process of ``keys``, SIGKILL those still alive after :data:`GRACE_S`."""
    import psutil

    processes = []
    for pid, started in keys:
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - started) < 1e-3:
                process.terminate()
                processes.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(processes, timeout=GRACE_S)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


def _watch(driver: int, before: set[int]) -> None:
    """The watcher's loop (see the module's docstring): ``driver`` is the parent's pid, ``before`` its children
    that existed before the watched block (they are not watched)."""
    import psutil

    for sig in (signal.SIGINT, signal.SIGHUP):  # Ctrl-C or a closed terminal: the driver cleans up, we wait for EOF
        signal.signal(sig, signal.SIG_IGN)
    if os.getppid() != driver:
        return  # the driver died before we started: its children are no longer ours to find
    before.add(os.getpid())
    roots: set[_Key] = set()
    seen: set[_Key] = set()
    received, ended = b"", False
    while True:
        if not ended:  # while the block runs, the driver's new children are the processes to watch
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(driver).children():
                    with contextlib.suppress(psutil.Error):
                        if child.pid not in before:
                            roots.add((child.pid, child.create_time()))
        seen |= {key for key in roots if _alive(key)} | _descendants(roots)
        if ended and not any(_alive(key) for key in roots):
            break  # Ray was shut down (or never started): stop what it left behind
        ready, _, _ = select.select([0], [], [], POLL_S)
        if ready:
            data = os.read(0, 65536)
            if not data:
                break  # the driver is gone
            received += data
            if received.endswith(_END):  # the driver's own list of the block's children
                ended = True
                roots = {(int(pid), float(started)) for pid, started in
                         (line.split() for line in received[:-len(_END)].decode().splitlines() if line.strip())}
                seen = {key for key in roots if _alive(key)} | _descendants(roots)
    seen |= _descendants(roots)
    _stop(seen)


if __name__ == "__main__":
    _watch(int(sys.argv[1]), {int(pid) for pid in sys.argv[2:]})
