"""One driver per search: a lease row in the store, kept alive by a heartbeat thread.

A driver (``nas search run`` / ``resume``) takes the search's lease (:meth:`nas.store.Store.acquire_lease`) before
it changes anything; a second driver on the same search is refused with :class:`~nas.store.LeaseError` while the
first one lives. The lease is free again when its holder releases it (at the end of the run, whatever the end),
when its heartbeat is older than ``stale_after_s`` (a driver that died on another host, or hangs), or at once when
the holder was on this host and its process is gone (matched by pid and process start time, so a reused pid does
not count). Taking over a stale lease is what lets :meth:`~nas.store.Store.reconcile` requeue the trials the dead
driver left ``running`` (Optuna's own heartbeat only covers ``study.optimize``, not ask/tell, so this is ours).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas.store import LeaseRecord, Store

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "DriverLease", "holder_alive"]

HEARTBEAT_S = 5.0
"""Seconds between two heartbeats of a driver."""
STALE_AFTER_S = 60.0
"""A lease whose heartbeat is older than this is taken over (its holder is presumed dead)."""


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def holder_alive(lease: LeaseRecord) -> bool:
    """Whether the lease's holder may still live: ``False`` only when it was on this host and its process (same pid,
    same start time) is gone; a holder on another host is judged by its heartbeat alone."""
    if lease.host != socket.gethostname():
        return True
    started = _process_started(lease.pid)
    return started is not None and abs(started - lease.pid_started) < 1.0


class DriverLease:
    """The lease of one search held by this process (a context manager: acquired on enter, released on exit).

    Args:
        store: the search's store (the heartbeat thread writes through it: short transactions of its own).
        name: the search.
        heartbeat_s, stale_after_s: see :data:`HEARTBEAT_S`, :data:`STALE_AFTER_S`.

    Attributes:
        owner: this driver's random token.
        lost: set (with the reason) when a heartbeat found the lease taken by another driver.
    """

    def __init__(self, store: Store, name: str, *, heartbeat_s: float = HEARTBEAT_S,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        self.store, self.name = store, name
        self.heartbeat_s, self.stale_after_s = float(heartbeat_s), float(stale_after_s)
        self.owner = uuid.uuid4().hex
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> LeaseRecord:
        """Take the lease and start the heartbeat; raises :class:`~nas.store.LeaseError` when a live driver holds
        it."""
        pid = os.getpid()
        record = self.store.acquire_lease(self.name, owner=self.owner, stale_after_s=self.stale_after_s,
                                          host=socket.gethostname(), pid=pid,
                                          pid_started=_process_started(pid) or 0.0, holder_alive=holder_alive)
        self._thread = threading.Thread(target=self._beat, name=f"nas-lease-{self.name}", daemon=True)
        self._thread.start()
        return record

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.store.heartbeat(self.name, self.owner):
                    self.lost = f"the lease of search {self.name!r} was taken over by another driver"
                    return
            except Exception:  # noqa: BLE001 - a transient database error: try again at the next beat
                continue

    def release(self) -> None:
        """Stop the heartbeat and give the lease up (best effort: a dead database leaves it to go stale)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 5)
        try:
            self.store.release_lease(self.name, self.owner)
        except Exception:  # noqa: BLE001 - never mask the run's own error
            pass

    def __enter__(self) -> DriverLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
