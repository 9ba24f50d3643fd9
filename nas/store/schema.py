"""The store's tables (SQLAlchemy 2 ORM), all prefixed ``nas_`` so they share a database with Optuna's tables.

========================  ====================================================================================
table                     one row per
========================  ====================================================================================
``nas_meta``              key/value facts about the store itself (``schema_version``)
``nas_searches``          search (``nas search run --name NAME``); its Optuna study is named NAME too
``nas_architectures``     architecture, keyed by its canonical graph hash (shared by every search)
``nas_scores``            (search, architecture, proxy or predictor name): a score and the seconds it took
``nas_trials``            training run of an architecture in a search (``queued`` -> ``running`` -> finished)
``nas_lineage``           (search, child architecture): the parents it was derived from and the operator
``nas_leases``            search being driven: which driver holds it (host, pid) and its last heartbeat
========================  ====================================================================================

Schema versions: 1 (the first); 2 adds ``nas_searches.budget`` and ``nas_searches.error`` (formerly Optuna study
attributes), ``nas_trials.tell_seq`` (the order in which the strategy was told the results) and ``nas_leases``;
3 adds ``nas_searches.job_id``/``job_address`` (the Ray job running the search) and ``nas_trials.gpu_fallback``.
Changes are Alembic revisions (:mod:`nas.store.migrate`, scripts in ``nas/store/migrations/versions``; schema 2 is
the baseline revision); every older store is upgraded in place when it is opened. A change to a model here needs
a new revision there.

Encodings chosen so that SQLite and PostgreSQL round-trip the same values:

- JSON columns are :class:`JSONText`: JSON written as ``TEXT`` with Python's ``json`` module, so ``NaN`` and
  ``±Infinity`` inside configs, epoch metrics and objective values come back exactly (PostgreSQL's ``json`` type
  rejects them).
- A score's value is ``value`` (a finite double, or ``NULL``) plus ``value_kind`` (``finite``, ``nan``, ``inf``,
  ``-inf``): SQLite turns a stored NaN into ``NULL``. :func:`encode_float` / :func:`decode_float` convert.
- Timestamps are naive UTC (``DateTime`` without time zone behaves the same in both); the store's records carry
  them as aware UTC datetimes.
- Constraint and index names come from one naming convention that starts with the (``nas_``) table name, so they
  never collide with Optuna's in PostgreSQL's per-schema namespace.
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nas.statuses import SearchStatus, TrialStatus

__all__ = ["ArchitectureModel", "Base", "JSONText", "LeaseModel", "LineageModel", "MetaModel", "SCHEMA_VERSION",
           "SEARCH_STATUSES", "ScoreModel", "SearchModel", "SearchStatus", "TRIAL_STATUSES", "TrialModel",
           "TrialStatus", "decode_float", "encode_float", "utcnow"]

#: Bumped whenever a table changes; a store whose ``nas_meta.schema_version`` is newer is refused.
SCHEMA_VERSION = 3


#: The states of a search, as strings.
SEARCH_STATUSES = tuple(s.value for s in SearchStatus)
#: The states of a trial, as strings: ``queued`` and ``running`` are unfinished, the other three finished.
TRIAL_STATUSES = tuple(s.value for s in TrialStatus)

_NAMING = {"ix": "%(table_name)s_%(column_0_N_name)s_ix", "uq": "%(table_name)s_%(column_0_N_name)s_uq",
           "ck": "%(table_name)s_%(constraint_name)s_ck", "fk": "%(table_name)s_%(column_0_N_name)s_fk",
           "pk": "%(table_name)s_pk"}


def utcnow() -> datetime.datetime:
    """The current time as a naive UTC datetime (how every timestamp column stores it)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def encode_float(value: float) -> tuple[float | None, str]:
    """``(value, kind)`` for a score column pair: the value when finite (else ``None``) and its kind."""
    value = float(value)
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return None, "inf" if value > 0 else "-inf"
    return value, "finite"


def decode_float(value: float | None, kind: str) -> float:
    """Inverse of :func:`encode_float`."""
    if kind == "finite" and value is not None:
        return float(value)
    return {"inf": math.inf, "-inf": -math.inf}.get(kind, math.nan)


def _check_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class JSONText(TypeDecorator[Any]):
    """JSON stored as ``TEXT`` (``NaN`` and ``±Infinity`` round-trip; see the module docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, allow_nan=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    """Declarative base of the store's tables (their own ``MetaData``, never Optuna's)."""

    metadata = MetaData(naming_convention=_NAMING)


class MetaModel(Base):
    """``nas_meta``: facts about the store (``schema_version``)."""

    __tablename__ = "nas_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SearchModel(Base):
    """``nas_searches``: one search; its Optuna study is ``optuna_study_name``."""

    __tablename__ = "nas_searches"
    __table_args__ = (CheckConstraint(_check_in("status", SEARCH_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    space: Mapped[str] = mapped_column(String(255))
    dataset: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(JSONText)
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    directions: Mapped[list[str]] = mapped_column(JSONText)
    objectives: Mapped[list[str]] = mapped_column(JSONText)
    optuna_study_name: Mapped[str] = mapped_column(String(512))
    created: Mapped[datetime.datetime] = mapped_column(DateTime)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime)
    budget: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    job_address: Mapped[str | None] = mapped_column(Text, nullable=True)


class ArchitectureModel(Base):
    """``nas_architectures``: one architecture, keyed by its canonical graph hash, with its ONNX file."""

    __tablename__ = "nas_architectures"

    hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    space: Mapped[str] = mapped_column(String(255))
    derivation: Mapped[str] = mapped_column(Text)
    arch: Mapped[str | None] = mapped_column(Text, nullable=True)
    onnx: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    params: Mapped[int] = mapped_column(BigInteger)
    flops: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime.datetime] = mapped_column(DateTime)


class ScoreModel(Base):
    """``nas_scores``: one proxy or predictor score of an architecture in a search."""

    __tablename__ = "nas_scores"
    __table_args__ = (UniqueConstraint("search_id", "arch_hash", "name"),
                      CheckConstraint("value_kind IN ('finite', 'nan', 'inf', '-inf')", name="value_kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("nas_searches.id", ondelete="CASCADE"))
    arch_hash: Mapped[str] = mapped_column(ForeignKey("nas_architectures.hash"))
    name: Mapped[str] = mapped_column(String(255))
    value: Mapped[float | None] = mapped_column(Double, nullable=True)
    value_kind: Mapped[str] = mapped_column(String(8))
    seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime)


class TrialModel(Base):
    """``nas_trials``: one training run; ``optuna_pending`` is set while its Optuna trial is being written."""

    __tablename__ = "nas_trials"
    __table_args__ = (CheckConstraint(_check_in("status", TRIAL_STATUSES), name="status"),
                      Index(None, "search_id", "status"), Index(None, "search_id", "arch_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("nas_searches.id", ondelete="CASCADE"))
    arch_hash: Mapped[str] = mapped_column(ForeignKey("nas_architectures.hash"))
    generation: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    resources: Mapped[dict[str, Any]] = mapped_column(JSONText)
    epochs: Mapped[list[dict[str, Any]]] = mapped_column(JSONText)
    final: Mapped[dict[str, Any] | None] = mapped_column(JSONText, nullable=True)
    val_acc: Mapped[float | None] = mapped_column(Double, nullable=True)
    test_acc: Mapped[float | None] = mapped_column(Double, nullable=True)
    objective_values: Mapped[list[float] | None] = mapped_column(JSONText, nullable=True)
    optuna_trial_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    optuna_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime.datetime] = mapped_column(DateTime)
    finished: Mapped[datetime.datetime | None] = mapped_column(DateTime, nullable=True)
    tell_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpu_fallback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class LineageModel(Base):
    """``nas_lineage``: how a child architecture was derived in a search (parents' hashes and the operator)."""

    __tablename__ = "nas_lineage"
    __table_args__ = (UniqueConstraint("search_id", "child_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("nas_searches.id", ondelete="CASCADE"))
    child_hash: Mapped[str] = mapped_column(ForeignKey("nas_architectures.hash"))
    parents: Mapped[list[str]] = mapped_column(JSONText)
    operator: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime.datetime] = mapped_column(DateTime)


class LeaseModel(Base):
    """``nas_leases``: the driver that holds a search (one row per search while a driver runs it).

    ``owner`` is a random token of the driver; ``host``, ``pid`` and ``pid_started`` (the process's start time,
    seconds since the epoch) say which process it is, so a driver on the same host can tell a dead holder at
    once; ``heartbeat`` is refreshed every few seconds while the driver lives.
    """

    __tablename__ = "nas_leases"

    search_id: Mapped[int] = mapped_column(ForeignKey("nas_searches.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(BigInteger)
    pid_started: Mapped[float] = mapped_column(Double)
    acquired: Mapped[datetime.datetime] = mapped_column(DateTime)
    heartbeat: Mapped[datetime.datetime] = mapped_column(DateTime)
