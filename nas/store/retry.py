"""Ride out a lost database connection: retry a store operation with exponential backoff for a bounded time.

A store's operations (:class:`nas.store.Store`) run through :meth:`Retrier.call`. When one fails with a
*transient* error (:func:`is_transient`: the connection dropped or was refused, the server restarted, SQLite stayed
locked past its busy timeout), it is tried again after 0.5 s, 1 s, 2 s, ... (at most :data:`MAX_DELAY_S` apart)
until it succeeds or ``retry_s`` seconds have passed since the first failure; then :class:`StoreUnavailableError`
is raised. After that the store is *down*: further operations get one attempt each, without waiting, until one
succeeds (so a search that gave up does not wait the whole window again to record that it stopped).

A retried operation must be safe to repeat: the store's writes are (a trial's ``finish_trial`` completes from
Optuna when its first attempt got that far; the others are single transactions that roll back on failure). Only
the outermost operation of a thread retries (one store method calling another retries once, as a whole).
While an operation waits, the caller waits: the search's driver then holds the results that arrive in memory (in
Ray Tune's queue) and records them once the database is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

__all__ = ["MAX_DELAY_S", "Retrier", "is_transient"]

_log = logging.getLogger("nas.store")
T = TypeVar("T")

MAX_DELAY_S = 5.0
"""The longest wait between two attempts."""


_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")
"""SQLite reports schema errors (no such table) as ``OperationalError`` too: only these messages are transient."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a connection-level database failure worth retrying:
    SQLAlchemy's ``OperationalError``/``InterfaceError`` (server gone, connection refused or reset; for SQLite only
    a lock or an unreadable file: :data:`_SQLITE_TRANSIENT`) or an error that invalidated the connection.
    Integrity, programming and schema errors are not."""
    import sqlite3

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OperationalError, InterfaceError)):
            if isinstance(current.orig, sqlite3.Error):
                return any(marker in str(current.orig).lower() for marker in _SQLITE_TRANSIENT)
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class Retrier:
    """Runs operations with retries (see the module docstring).

    Args:
        retry_s: how long to keep retrying after the first transient failure (0: never retry).
        describe: what the store is, for the messages (password masked).
        unavailable: the exception type raised when the time is up (called with one message line).
        explain: one line describing a failure (the store's, which never shows a password).
        sleep: how to wait (``time.sleep``).
    """

    def __init__(self, retry_s: float, describe: str, unavailable: Callable[[str], BaseException],
                 explain: Callable[[BaseException], str], sleep: Callable[[float], None] = time.sleep) -> None:
        if retry_s < 0:
            raise ValueError(f"retry_s must not be negative, got {retry_s!r}")
        self.retry_s = float(retry_s)
        self.describe = describe
        self.unavailable = unavailable
        self.explain = explain
        self.sleep = sleep
        self.down = False
        self.outages = 0
        self._depth = threading.local()

    def call(self, operation: Callable[[], T], what: str) -> T:
        """``operation()``, retried on transient errors for up to ``retry_s`` seconds."""
        if getattr(self._depth, "value", 0) > 0:
            return operation()  # inside another operation of this thread: the outer one retries
        self._depth.value = 1
        try:
            return self._attempts(operation, what)
        finally:
            self._depth.value = 0

    def _attempts(self, operation: Callable[[], T], what: str) -> T:
        deadline: float | None = None
        delay = 0.5
        while True:
            try:
                result = operation()
            except Exception as exc:  # noqa: BLE001 - Optuna wraps SQLAlchemy's errors: judged by is_transient
                if not is_transient(exc) or self.retry_s <= 0:
                    raise
                now = time.monotonic()
                if self.down or (deadline is not None and now >= deadline):
                    self.down = True
                    raise self.unavailable(f"the store {self.describe} is unreachable (for {self.retry_s:g} s of "
                                           f"retries): {what}: {self.explain(exc)}") from exc
                if deadline is None:
                    deadline = now + self.retry_s
                    self.outages += 1
                    _log.warning("the store %s is unreachable (%s); retrying for up to %g s", self.describe,
                                 self.explain(exc), self.retry_s)
                self.sleep(min(delay, max(0.0, deadline - now)))
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            if deadline is not None or self.down:
                _log.warning("the store %s is reachable again (%s)", self.describe, what)
            self.down = False
            return result

