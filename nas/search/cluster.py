"""Which Ray cluster a search joins, and whether it can ever run a trial: checked before any work starts.

- Without ``--address`` a search starts its **own local Ray** (``ray.init(address="local")``). Ray's own default
  (``address=None``) would join whatever ``RAY_ADDRESS`` or ``/tmp/ray/ray_current_cluster`` (left by any earlier
  ``ray start``) names, and hang forever when that cluster is gone.
- ``--address auto`` means that remembered cluster, so it is resolved here and checked with a short TCP connect
  (:func:`bootstrap_address`), like an explicit ``host:port``.
- :func:`check_trial_resources` compares one trial's request with the alive nodes: Tune places a trial on one
  node, so a request no node can meet would wait forever (``--gpus-per-trial 1`` on a CPU-only machine,
  ``cpus_per_trial: 100`` on 2 CPUs). It fails with the option that repairs it.
- :class:`ResourceWatch` repeats that check while a search runs: when nodes leave so that no alive node can host
  a trial any more, the Tune run would wait forever; the watch turns it into :class:`NodesLostError` (the search
  stops ``interrupted``, every finished trial kept, resumable with a smaller request).
- :func:`keep_sigterm_handler`: ``ray.init`` replaces the process's SIGTERM handler with ``sys.exit``; the
  command line's handler (SIGTERM behaves as Ctrl-C, the search ends ``interrupted``) is put back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nas.errors import ResourceError

__all__ = ["LOCAL", "NodesLostError", "ResourceWatch", "bootstrap_address", "check_trial_resources",
           "keep_sigterm_handler", "node_resources"]

LOCAL = "local"
"""The ``ray.init`` address that always starts a new local instance (never a remembered cluster)."""


def bootstrap_address(address: str) -> str:
    """The ``host:port`` that ``address`` means: ``auto`` resolves ``RAY_ADDRESS`` or the cluster that the last
    ``ray start`` recorded (``<temp dir>/ray/ray_current_cluster``); anything else is returned as it is."""
    if address != "auto":
        return address
    remembered = os.environ.get("RAY_ADDRESS", "").strip()
    if remembered and remembered != "auto":
        return remembered
    for folder in {tempfile.gettempdir(), "/tmp"}:
        record = Path(folder) / "ray" / "ray_current_cluster"
        try:
            text = record.read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            return text.splitlines()[0].strip()
    return address


def node_resources() -> list[dict[str, float]]:
    """The total resources of each alive node of the connected Ray cluster (``CPU``, ``GPU``, ``memory``, ...)."""
    import ray

    return [dict(node.get("Resources") or {}) for node in ray.nodes() if node.get("Alive")]


def check_trial_resources(cpus_per_trial: float, gpus_per_trial: float,
                          nodes: list[dict[str, float]] | None = None) -> None:
    """Fail unless some alive node can host one trial (``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs).

    Args:
        nodes: the nodes' resources (default: :func:`node_resources` of the connected cluster).

    Raises:
        ResourceError: no node has that many CPUs and GPUs; the message gives the largest node and the options
            that repair the request (``nas search run`` and ``nas search resume`` both take them).
    """
    nodes = node_resources() if nodes is None else nodes
    short = _shortfall(cpus_per_trial, gpus_per_trial, nodes)
    if short is None:
        return
    what, fix = short
    raise ResourceError(f"{what}: the trials could never start; lower the request ({' '.join(fix)}; "
                        "`nas search resume NAME` takes the same options)")


class NodesLostError(ResourceError):
    """Nodes left the Ray cluster during a search, and no node that is left can host one trial.

    Attributes:
        fix: the options that lower the request to what the largest node left has (e.g. ``["--cpus-per-trial",
            "1"]``), for ``nas search resume``.
    """

    def __init__(self, message: str, fix: list[str]):
        super().__init__(message)
        self.fix = fix


class ResourceWatch:
    """Re-checks, at most every ``every_s`` seconds, that some alive node can still host one trial.

    Args:
        cpus_per_trial, gpus_per_trial: one trial's request.
        every_s: seconds between two looks at ``ray.nodes()`` (a cheap call to the GCS).
        nodes: where the nodes' resources come from (default: :func:`node_resources` of the connected cluster).
    """

    def __init__(self, cpus_per_trial: float, gpus_per_trial: float, *, every_s: float = 5.0,
                 nodes: Callable[[], list[dict[str, float]]] | None = None) -> None:
        self.cpus_per_trial, self.gpus_per_trial, self.every_s = cpus_per_trial, gpus_per_trial, every_s
        self.nodes = nodes or node_resources
        self._next = time.monotonic() + every_s  # the search's start has just checked

    def check(self) -> NodesLostError | None:
        """``None`` while some node can host a trial (or before the next look is due); else the error to stop on."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every_s
        try:
            nodes = self.nodes()
        except Exception:  # noqa: BLE001 - a GCS hiccup is not a lost node: look again later
            return None
        short = _shortfall(self.cpus_per_trial, self.gpus_per_trial, nodes)
        if short is None:
            return None
        what, fix = short
        return NodesLostError(f"nodes left the Ray cluster during the search: {what} any more", fix)


def _shortfall(cpus_per_trial: float, gpus_per_trial: float, nodes: list[dict[str, float]]
               ) -> tuple[str, list[str]] | None:
    """``None`` if some node has ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs; else what is missing and the
    options that repair the request."""
    need = {"CPU": float(cpus_per_trial), "GPU": float(gpus_per_trial)}
    if any(all(node.get(key, 0.0) + 1e-9 >= amount for key, amount in need.items()) for node in nodes):
        return None
    cpus = max((node.get("CPU", 0.0) for node in nodes), default=0.0)
    gpus = max((node.get("GPU", 0.0) for node in nodes), default=0.0)
    fix = []
    if need["CPU"] > cpus:
        fix.append(f"--cpus-per-trial {_number(cpus) if cpus >= 1 else 1}")
    if need["GPU"] > gpus:
        fix.append(f"--gpus-per-trial {_number(gpus)}")
    return (f"a trial asks for {_number(need['CPU'])} CPU(s) and {_number(need['GPU'])} GPU(s), but no node of the "
            f"Ray cluster has that much ({len(nodes)} node(s); at most {_number(cpus)} CPUs and {_number(gpus)} GPUs "
            "on one)"), fix


def _number(value: float) -> str:
    return f"{value:g}"


@contextlib.contextmanager
def keep_sigterm_handler() -> Iterator[None]:
    """Restore the Python SIGTERM handler installed before the block (``ray.init`` replaces it with ``sys.exit``);
    without one, Ray's is kept (it shuts Ray down on SIGTERM)."""
    main = threading.current_thread() is threading.main_thread()
    previous: Any = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and callable(previous) and signal.getsignal(signal.SIGTERM) is not previous:
            signal.signal(signal.SIGTERM, previous)
