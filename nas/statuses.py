"""The states of a search and of a trial, as enums (one definition, used by the store, the driver and the CLI).

Members are ``StrEnum`` s: each equals (and is stored as) its string value, so ``trial.status == "ok"`` still holds.
This module imports nothing, so the strategies and other light modules can use it.
"""

from __future__ import annotations

import enum

__all__ = ["SearchStatus", "TrialStatus"]


class SearchStatus(enum.StrEnum):
    """The states of a search (stored as their string values)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class TrialStatus(enum.StrEnum):
    """The states of a trial (stored as their string values; a member equals its string).

    ``queued`` -> ``running`` -> one of the finished states ``ok`` (every epoch), ``stopped`` (ended early by the
    scheduler, ASHA) or ``failed``. :data:`FINISHED` / :data:`UNFINISHED` / :data:`TRAINED` group them.
    """

    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    STOPPED = "stopped"
    FAILED = "failed"

    @classmethod
    def finished(cls) -> tuple[TrialStatus, ...]:
        """``ok``, ``stopped``, ``failed``: the trial counts toward the budget."""
        return (cls.OK, cls.STOPPED, cls.FAILED)

    @classmethod
    def unfinished(cls) -> tuple[TrialStatus, ...]:
        """``queued``, ``running``."""
        return (cls.QUEUED, cls.RUNNING)

    @classmethod
    def trained(cls) -> tuple[TrialStatus, ...]:
        """``ok``, ``stopped``: the trial has a validation accuracy to rank by."""
        return (cls.OK, cls.STOPPED)
