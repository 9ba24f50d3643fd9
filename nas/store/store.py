"""The search's one SQL store, sharing its database with Optuna's RDB storage (see :class:`Store`).

Only the search driver writes to a store (Ray Tune workers report to the driver), so SQLite needs no
cross-process locking; WAL mode still lets ``optuna-dashboard`` read while the driver writes.

Every method runs in its own short transaction and commits before it returns, so a driver killed with SIGKILL
loses at most the write in progress. Finishing a trial takes several commits (Optuna's trial, its ONNX artifact,
its final state, then our row); :meth:`Store.reconcile` repairs a crash between them (see
:meth:`Store.finish_trial`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import io
import json
import logging
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import event, select
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker, undefer

from nas.errors import NasError
from nas.store.guard import refuse_foreign_sqlite
from nas.store.migrate import VERSION_TABLE, current_revision, head_revision, known_revisions, upgrade
from nas.store.retry import Retrier
from nas.store.schema import (
    SCHEMA_VERSION,
    SEARCH_STATUSES,
    TRIAL_STATUSES,
    ArchitectureModel,
    LeaseModel,
    LineageModel,
    MetaModel,
    ScoreModel,
    SearchModel,
    TrialModel,
    TrialStatus,
    decode_float,
    encode_float,
    utcnow,
)
from nas.store.sqlite_read_only import connect_read_only
from nas.util.secrets import scrub
from nas.viz.dashboard import attach_picture

__all__ = ["ArchitectureRecord", "LeaseError", "LeaseRecord", "LineageRecord", "ReconcileReport", "ScoreRecord",
           "SearchRecord", "Store", "StoreError", "TrialRecord", "default_db_url"]

_log = logging.getLogger(__name__)

#: Trial statuses that mean the trial finished (:meth:`Store.finish_trial` accepts exactly these).
FINISHED_STATUSES = tuple(str(s) for s in TrialStatus.finished())
_UNFINISHED = tuple(str(s) for s in TrialStatus.unfinished())
_DIRECTIONS = ("maximize", "minimize")
#: The Optuna trial system attribute holding everything needed to complete our row from Optuna alone.
_RESULT_ATTR = "nas:result"
_OPTUNA_STATE = {"ok": TrialState.COMPLETE, "stopped": TrialState.PRUNED, "failed": TrialState.FAIL}
_SQLITE_BUSY_MS = 30_000
_CONNECT_TIMEOUT_S = 10


def default_db_url() -> str:
    """The store used when ``--db`` is not given: ``sqlite:///nas.db`` (``nas.db`` in the working directory)."""
    return "sqlite:///nas.db"


class StoreError(NasError, RuntimeError):
    """The store cannot do what was asked: unreachable or corrupt database, bad URL, unknown or duplicate name.

    The message is one line that names the database (password masked) and the cause; nothing stored is changed.
    """


class StoreUnavailableError(StoreError):
    """The database stayed unreachable for the store's whole ``retry_s`` (:mod:`nas.store.retry`); a search that
    meets it stops ``interrupted`` and can be resumed once the database is back."""


class LeaseError(StoreError):
    """The search is held by another live driver (:meth:`Store.acquire_lease`); the message names it."""


# ----------------------------------------------------------------------------------------------------- records


def _aware(value: datetime.datetime) -> datetime.datetime:
    return value.replace(tzinfo=datetime.UTC)


def _aware_or_none(value: datetime.datetime | None) -> datetime.datetime | None:
    return None if value is None else _aware(value)


@dataclass(frozen=True)
class SearchRecord:
    """One search: what it searches, with which objectives, and its state.

    Attributes:
        id: the row id.
        name: the search's unique name, also the name of its Optuna study (``optuna_study_name``).
        space, dataset: the search space and data set names.
        config: the search's configuration (JSON data), also the Optuna study's user attribute ``config``.
        seed: the search's seed.
        status: ``running``, ``finished``, ``failed`` or ``interrupted``.
        objectives: the objective names, e.g. ``("val_acc", "params")``; objective 0 is validation accuracy.
        directions: ``maximize`` / ``minimize``, one per objective.
        optuna_study_name: the Optuna study holding the search's trained candidates.
        created, updated: aware UTC timestamps.
        budget: the trials to finish (``None`` in stores written before schema 2: then the config's).
        error: why the search last failed or was interrupted (empty otherwise).
        job_id, job_address: the Ray job running the search and its job server (``nas search submit``), ``None``
            for a search run directly.
    """

    id: int
    name: str
    space: str
    dataset: str
    config: dict[str, Any]
    seed: int
    status: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    optuna_study_name: str
    created: datetime.datetime
    updated: datetime.datetime
    budget: int | None = None
    error: str = ""
    job_id: str | None = None
    job_address: str | None = None

    @classmethod
    def _of(cls, row: SearchModel) -> SearchRecord:
        return cls(row.id, row.name, row.space, row.dataset, row.config, row.seed, row.status, tuple(row.objectives),
                   tuple(row.directions), row.optuna_study_name, _aware(row.created), _aware(row.updated),
                   row.budget, row.error or "", row.job_id, row.job_address)


@dataclass(frozen=True)
class ArchitectureRecord:
    """One architecture, keyed by its canonical graph hash.

    Attributes:
        hash: the canonical graph hash (hex).
        space: the space it was sampled from.
        derivation: its derivation string; ``arch`` its standard architecture string, if the space has one.
        params, flops: parameter count and FLOPs.
        created: aware UTC timestamp.
        onnx: the ONNX file's bytes, or ``None`` unless asked for (``get_architecture(h, with_onnx=True)``).
    """

    hash: str
    space: str
    derivation: str
    arch: str | None
    params: int
    flops: int
    created: datetime.datetime
    onnx: bytes | None = field(default=None, repr=False)

    @classmethod
    def _of(cls, row: ArchitectureModel, with_onnx: bool = False) -> ArchitectureRecord:
        return cls(row.hash, row.space, row.derivation, row.arch, row.params, row.flops, _aware(row.created),
                   row.onnx if with_onnx else None)


@dataclass(frozen=True)
class ScoreRecord:
    """One proxy or predictor score of an architecture in a search.

    Attributes:
        search: the search's name.
        arch_hash: the architecture.
        name: the proxy or predictor name.
        value: the score, exactly as given (``nan`` and ``±inf`` included).
        seconds: how long it took (``None`` when the given time was not finite).
        created: aware UTC timestamp.
    """

    search: str
    arch_hash: str
    name: str
    value: float
    seconds: float | None
    created: datetime.datetime


@dataclass(frozen=True)
class LineageRecord:
    """How a child architecture was derived in a search.

    Attributes:
        search: the search's name.
        child_hash: the derived architecture.
        parents: the parents' hashes (empty for a sampled root).
        operator: the operator that derived it (e.g. ``mutate``, ``crossover``, ``sample``).
        created: aware UTC timestamp.
    """

    search: str
    child_hash: str
    parents: tuple[str, ...]
    operator: str
    created: datetime.datetime


@dataclass(frozen=True)
class TrialRecord:
    """One training run of an architecture in a search.

    Attributes:
        id: the trial id (our row; the Optuna trial's user attribute ``nas_trial_id``).
        search: the search's name.
        arch_hash: the architecture trained.
        generation: the search generation that proposed it.
        status: ``queued``, ``running`` (unfinished), ``ok``, ``stopped`` (early-stopped by the scheduler) or
            ``failed``.
        error: a one-line reason when failed, else empty.
        resources: what the trial ran with (e.g. ``{"cpu": 1, "gpu": 0}``).
        epochs: per-epoch metric dicts (``epoch``, ``val_acc``, ...), in order.
        final: the final metrics (``None`` if none).
        val_acc, test_acc: from ``final``, else from the last epoch; ``None`` when missing or not finite.
        objective_values: the values of the search's objectives, as given to :meth:`Store.finish_trial`.
        optuna_trial_number: the number of its Optuna trial once finished.
        created: aware UTC timestamp of the row; ``finished`` when it finished.
        tell_seq: the position (from 0) at which the search's strategy was told this result (:meth:`Store.mark_told`);
            ``None`` while untold. A resumed search replays its history in this order.
        gpu_fallback: the trial asked for a GPU (``resources["gpu"] > 0``) but trained on the CPU
            (``resources["device"]``), e.g. on a node without CUDA; set by :meth:`Store.finish_trial`.
    """

    id: int
    search: str
    arch_hash: str
    generation: int
    status: str
    error: str
    resources: dict[str, Any]
    epochs: tuple[dict[str, Any], ...]
    final: dict[str, Any] | None
    val_acc: float | None
    test_acc: float | None
    objective_values: tuple[float, ...] | None
    optuna_trial_number: int | None
    created: datetime.datetime
    finished: datetime.datetime | None
    tell_seq: int | None = None
    gpu_fallback: bool = False

    @classmethod
    def _of(cls, row: TrialModel, search: str) -> TrialRecord:
        return cls(row.id, search, row.arch_hash, row.generation, TrialStatus(row.status), row.error, row.resources,
                   tuple(row.epochs), row.final, row.val_acc, row.test_acc,
                   None if row.objective_values is None else tuple(row.objective_values), row.optuna_trial_number,
                   _aware(row.created), _aware_or_none(row.finished), row.tell_seq, bool(row.gpu_fallback))

    @property
    def node(self) -> str | None:
        """The Ray node the trial ran on (``resources["node_id"]``, else its IP), ``None`` when unknown."""
        return (self.resources or {}).get("node_id") or (self.resources or {}).get("node_ip")


@dataclass(frozen=True)
class LeaseRecord:
    """Who drives a search (:meth:`Store.acquire_lease`).

    Attributes:
        search: the search's name; ``owner`` the driver's random token; ``host``, ``pid``, ``pid_started`` its
            process; ``acquired`` and ``heartbeat`` aware UTC timestamps.
    """

    search: str
    owner: str
    host: str
    pid: int
    pid_started: float
    acquired: datetime.datetime
    heartbeat: datetime.datetime


@dataclass(frozen=True)
class ReconcileReport:
    """What :meth:`Store.reconcile` repaired.

    Attributes:
        completed: trial ids whose row was completed from an Optuna trial written before a crash.
        requeued: trial ids that were ``running`` with no Optuna trial, now ``queued`` to be trained again.
    """

    completed: tuple[int, ...] = ()
    requeued: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Result:
    """A finished trial's outcome: what :meth:`Store.finish_trial` was given, also kept in the Optuna trial."""

    status: str
    error: str
    epochs: list[dict[str, Any]]
    final: dict[str, Any] | None
    objective_values: list[float] | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Result:
        return cls(data["status"], data["error"], data["epochs"], data["final"], data["objective_values"])

    def intermediate_values(self) -> dict[int, float]:
        """Optuna's intermediate values: each epoch's ``val_acc`` at step ``epoch`` (else its 1-based position)."""
        steps: dict[int, float] = {}
        for position, epoch in enumerate(self.epochs, start=1):
            value = epoch.get("val_acc")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                steps[int(epoch.get("epoch", position))] = float(value)
        return steps

    def optuna_values(self, n_objectives: int) -> list[float] | None:
        """The Optuna trial's values: the objective values when ``ok``; for ``stopped`` in a single-objective
        search the last finite intermediate value (as Optuna's ``tell`` does for a pruned trial); else ``None``."""
        if self.status == "ok":
            return self.objective_values
        steps = self.intermediate_values()
        if self.status == "stopped" and n_objectives == 1 and steps and math.isfinite(steps[max(steps)]):
            return [steps[max(steps)]]
        return None

    def metric(self, name: str) -> float | None:
        """``final[name]``, else the last epoch's, as a finite float; else ``None``."""
        source = self.final if self.final is not None else (self.epochs[-1] if self.epochs else {})
        value = source.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return None


# --------------------------------------------------------------------------------------------------- helpers


def _mask(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _cause(exc: BaseException, password: str | None = None) -> str:
    """One line describing ``exc``: the driver's message where SQLAlchemy wrapped one, never a password."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(inner)
    if isinstance(exc, SQLAlchemyError) and inner is exc:
        text = re.sub(r"\(Background on this error at: [^)]*\)", "", text)
    text = " ".join(text.split()) or type(inner).__name__
    return scrub(text, password)


def _builtin(value: Any) -> Any:
    """JSON fallback for numpy/torch scalars and arrays (anything with ``tolist``/``item``)."""
    for method in ("tolist", "item"):
        if callable(getattr(value, method, None)):
            return getattr(value, method)()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _json_ready(value: Any, what: str) -> Any:
    """``value`` after a JSON round trip (so records equal what a reopened store returns); ValueError if not JSON.

    Tuples become lists; numpy/torch scalars become Python numbers.
    """
    try:
        return json.loads(json.dumps(value, allow_nan=True, default=_builtin))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON data (dicts, lists, str, numbers, bools, None): {exc}") from None


def _local_naive(utc_naive: datetime.datetime) -> datetime.datetime:
    """Our naive UTC timestamp as the naive local time that Optuna stores."""
    return _aware(utc_naive).astimezone().replace(tzinfo=None)


class Store:
    """The search's SQL store: our ``nas_*`` tables plus Optuna's RDB storage in the same database.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///nas.db`` (:func:`default_db_url`; a file, WAL journal, foreign keys on)
            or ``postgresql+psycopg://user:pass@host:port/db`` (needs ``pip install 'nas-platform[postgres]'``).
            In-memory SQLite is refused: Optuna's engine would see another database.
        artifact_dir: where Optuna's :class:`~optuna.artifacts.FileSystemArtifactStore` keeps the trained
            candidates' ONNX files. Default: ``<db file stem>_artifacts/`` beside a SQLite file, else
            ``./nas_artifacts``. Created when the store opens. Pass the same folder to
            ``optuna-dashboard URL --artifact-dir DIR`` (see :meth:`dashboard_command`).

        retry_s: once open, how long an operation that lost the database connection is retried with backoff
            before :class:`StoreUnavailableError` (:mod:`nas.store.retry`; 0, the default: not retried). Opening
            itself is never retried: an unreachable or corrupt database at start is an error at once.
        sqlite_busy_s: how long a SQLite statement waits for another process's lock before failing (30 s; a
            lock held longer is then retried for ``retry_s``).
        read_only: open for reading only (``nas search ls/show/export/plot/report``): nothing is created,
            migrated or written, not even the artifact folder; a SQLite file is opened through SQLite's read-only
            URI (:func:`~nas.store.sqlite_read_only.connect_read_only`: it works on a file or folder the user
            cannot write and leaves the file's bytes, mtime and journal mode as they were), a PostgreSQL session
            is read-only. A store that is missing, holds no nas tables or needs a migration is a
            :class:`StoreError` naming the fix (``nas store upgrade``). Every write then fails
            with a :class:`StoreError`.
        allow_foreign: let a new store's tables join a SQLite file that holds another application's tables only
            (refused otherwise, :func:`~nas.store.guard.refuse_foreign_sqlite`); their tables and rows are left
            untouched (``--allow-foreign-db``).

    Raises:
        StoreError: bad URL, missing driver, unreachable server, a file that is not SQLite, or a store written
            by a newer version. The message names the URL (password masked) and the cause; nothing is written.

    Attributes:
        url: the URL as given (a SQLite file's path made absolute). ``display_url``: the same, password masked.
        artifact_dir: the artifact folder (absolute).
        optuna_storage: the :class:`optuna.storages.RDBStorage` on the same database.
        artifact_store: the :class:`optuna.artifacts.FileSystemArtifactStore` on ``artifact_dir``.

    A store is a context manager; :meth:`close` releases its connections. Methods are not thread-safe: one
    driver thread uses a store.
    """

    def __init__(self, url: str, *, artifact_dir: str | Path | None = None, retry_s: float = 0.0,
                 sqlite_busy_s: float = _SQLITE_BUSY_MS / 1000, read_only: bool = False,
                 allow_foreign: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self._busy_ms = int(sqlite_busy_s * 1000)
        try:
            parsed = sa.make_url(url)
        except ArgumentError as exc:
            shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
            raise StoreError(f"bad store URL {shown!r}: {_cause(exc)} (e.g. {default_db_url()} or "
                             "postgresql+psycopg://user:password@host:5432/db)") from None
        self._url = parsed
        self.display_url = _mask(parsed)
        self._sqlite_path: Path | None = None
        engine_kwargs: dict[str, Any] = {}
        optuna_kwargs: dict[str, Any] = {}
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or database.startswith("file::memory:") or "mode=memory" in str(parsed):
                raise StoreError(f"cannot use in-memory SQLite ({self.display_url}) as a store: Optuna's storage "
                                 "would open another database; use a file, e.g. sqlite:///nas.db")
            self._sqlite_path = Path(database).expanduser().resolve()
            if not allow_foreign:
                refuse_foreign_sqlite(self._sqlite_path, self.display_url)  # before anything is created in it
            # absolute, so that a later chdir (Ray changes folders) cannot point either engine elsewhere
            parsed = parsed.set(database=str(self._sqlite_path))
            self.url = parsed.render_as_string(hide_password=False)
            optuna_kwargs["connect_args"] = {"timeout": self._busy_ms / 1000}
            if read_only:
                if not self._sqlite_path.is_file():
                    raise StoreError(f"no store at {self.display_url}: file {self._sqlite_path} does not exist "
                                     "(a search run creates it)")
                creator = functools.partial(connect_read_only, self._sqlite_path, self._busy_ms / 1000)
                engine_kwargs["creator"] = optuna_kwargs["creator"] = creator
                optuna_kwargs.pop("connect_args")
        elif backend == "postgresql":
            if "connect_timeout" not in parsed.query:
                engine_kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}
                optuna_kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}
            engine_kwargs["pool_pre_ping"] = True
            optuna_kwargs["pool_pre_ping"] = True
            if read_only:
                engine_kwargs["execution_options"] = {"postgresql_readonly": True}
                optuna_kwargs["execution_options"] = {"postgresql_readonly": True}

        try:
            self._engine = sa.create_engine(parsed, **engine_kwargs)
        except (NoSuchModuleError, ImportError) as exc:
            hint = " (pip install 'nas-platform[postgres]')" if backend == "postgresql" else ""
            raise StoreError(f"cannot open the store {self.display_url}: no database driver for "
                             f"{parsed.drivername!r}: {_cause(exc)}{hint}") from None
        except (ArgumentError, SQLAlchemyError, TypeError, ValueError) as exc:
            raise StoreError(f"bad store URL {self.display_url}: {_cause(exc, parsed.password)}") from None
        if backend == "sqlite":
            event.listen(self._engine, "connect", functools.partial(_sqlite_on_connect, busy_ms=self._busy_ms,
                                                                    read_only=read_only))
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._retrier = Retrier(retry_s, self.display_url, StoreUnavailableError,
                                lambda exc: _cause(exc, self._url.password))
        self._studies: dict[str, optuna.Study] = {}
        try:
            self._probe()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # read-only: Optuna must neither create its tables nor stamp a version (_check_current has
                # already found a complete store, which holds both)
                self.optuna_storage = RDBStorage(self.url, engine_kwargs=optuna_kwargs,
                                                 skip_table_creation=read_only, skip_compatibility_check=read_only)
            if not read_only:
                self._migrate()
        except StoreError:
            self.close()
            raise
        except (SQLAlchemyError, optuna.exceptions.OptunaError, RuntimeError, OSError, ImportError) as exc:
            self.close()
            raise self._error("cannot open the store", exc) from None

        if artifact_dir is None:
            if self._sqlite_path is not None:
                artifact_dir = self._sqlite_path.with_name(self._sqlite_path.stem + "_artifacts")
            else:
                artifact_dir = "nas_artifacts"
        self.artifact_dir = Path(artifact_dir).expanduser().resolve()
        try:
            if not read_only:
                self.artifact_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.close()
            raise StoreError(f"cannot create the artifact folder {self.artifact_dir} for {self.display_url}: "
                             f"{exc.strerror or exc}") from None
        self.artifact_store = FileSystemArtifactStore(self.artifact_dir)

    # ------------------------------------------------------------------------------------------- lifecycle

    def _error(self, what: str, exc: BaseException) -> StoreError:
        where = self.display_url
        if self._sqlite_path is not None:
            where = f"{where} (file {self._sqlite_path})"
        return StoreError(f"{what} {where}: {_cause(exc, self._url.password)}")

    def _probe(self) -> None:
        """Before anything is written: connect (the database is reachable and readable) and check our schema is
        not newer than this nas-platform's (a revision it does not know, or a newer ``schema_version``)."""
        if self._sqlite_path is not None and not self._sqlite_path.parent.is_dir():
            raise StoreError(f"cannot open the store {self.display_url}: folder {self._sqlite_path.parent} "
                             "does not exist")
        with self._engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            inspector = sa.inspect(connection)
            revision = current_revision(connection) if inspector.has_table(VERSION_TABLE) else None
            if not inspector.has_table(MetaModel.__tablename__):
                version = None
            else:
                version = connection.execute(select(MetaModel.value).where(MetaModel.key == "schema_version")).scalar()
        if revision is not None and revision not in known_revisions():
            raise StoreError(f"the store {self.display_url} has schema revision {revision}, unknown to this "
                             f"nas-platform (newest {head_revision()}): upgrade nas-platform")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise StoreError(f"the store {self.display_url} has schema version {version}, newer than this "
                             f"nas-platform's ({SCHEMA_VERSION}): upgrade nas-platform")
        if self.read_only:
            self._check_current(revision, version)

    def _check_current(self, revision: str | None, version: str | None) -> None:
        """A read-only store must be complete and at the newest revision: reading never migrates."""
        if version is None and revision is None:
            raise StoreError(f"{self.display_url} holds no nas store (no nas_* tables); a search run creates one")
        if revision != head_revision():
            raise StoreError(f"the store {self.display_url} has schema revision {revision or '(none: schema 1)'}, "
                             f"older than this nas-platform's ({head_revision()}); read-only commands never migrate: "
                             f"run `nas store upgrade --db {self.display_url}` first")

    def _migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (:mod:`nas.store.migrate`: a new store gets every
        table, an older one is upgraded in place) and record :data:`~nas.store.schema.SCHEMA_VERSION`."""
        upgrade(self._engine)
        with self._session() as session:
            session.merge(MetaModel(key="schema_version", value=str(SCHEMA_VERSION)))

    def close(self) -> None:
        """Release the store's database connections (ours and Optuna's). The store is unusable afterwards."""
        self._studies = {}
        storage = getattr(self, "optuna_storage", None)
        if storage is not None:
            storage.remove_session()
            storage.engine.dispose()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.display_url!r}, artifact_dir={str(self.artifact_dir)!r})"

    def dashboard_command(self) -> list[str]:
        """The command that shows this store's searches: ``optuna-dashboard URL --artifact-dir DIR``."""
        return ["optuna-dashboard", self.url, "--artifact-dir", str(self.artifact_dir)]

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back and raise :class:`StoreError` on a database error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise self._error("store error in", exc) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def _optuna_errors(self) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            raise self._error("Optuna storage error in", exc) from exc

    # ------------------------------------------------------------------------------------------- searches

    def _search_row(self, session: Session, name: str) -> SearchModel:
        row = session.scalars(select(SearchModel).where(SearchModel.name == name)).one_or_none()
        if row is None:
            known = session.scalars(select(SearchModel.name).order_by(SearchModel.id)).all()
            raise StoreError(f"no search named {name!r} in {self.display_url}; known: "
                             f"{', '.join(known) if known else '(none)'}")
        return row

    def create_search(self, name: str, *, space: str, dataset: str, config: Mapping[str, Any], seed: int,
                      objectives: Sequence[str], directions: Sequence[str],
                      budget: int | None = None) -> SearchRecord:
        """Create a search (status ``running``) and its Optuna study of the same name.

        The study gets the directions, ``set_metric_names(objectives)`` and the user attributes ``config``,
        ``space``, ``dataset``, ``seed`` and ``nas_search_id``.

        Raises:
            StoreError: a search or an Optuna study named ``name`` already exists in this database.
            ValueError: empty name, objectives and directions of different lengths or empty, a direction other
                than ``maximize``/``minimize``, or a config that is not JSON data.
        """
        if not name or not isinstance(name, str):
            raise ValueError("a search needs a non-empty name")
        objectives, directions = list(objectives), [d.lower() for d in directions]
        if not objectives or len(objectives) != len(directions):
            raise ValueError(f"need one direction per objective, got objectives {objectives} and directions "
                             f"{directions}")
        if any(d not in _DIRECTIONS for d in directions):
            raise ValueError(f"directions must be 'maximize' or 'minimize', got {directions}")
        config = _json_ready(dict(config), "config")
        with self._session() as session:
            if session.scalars(select(SearchModel.id).where(SearchModel.name == name)).first() is not None:
                raise StoreError(f"a search named {name!r} already exists in {self.display_url}; resume it or "
                                 "choose another name")
            with self._optuna_errors():
                foreign = self.optuna_storage.get_all_studies()
            if any(s.study_name == name for s in foreign):
                raise StoreError(f"an Optuna study named {name!r} (not a nas search) already exists in "
                                 f"{self.display_url}; choose another name")
            now = utcnow()
            row = SearchModel(name=name, space=space, dataset=dataset, config=config, seed=int(seed),
                              status="running", directions=directions, objectives=objectives,
                              optuna_study_name=name, created=now, updated=now,
                              budget=None if budget is None else int(budget), error="")
            session.add(row)
        record = SearchRecord._of(row)
        self._study(record)  # a crash before this line leaves a search whose study _study() creates later
        return record

    def _study(self, search: SearchRecord) -> optuna.Study:
        """The search's Optuna study, created (as :meth:`create_search` does) if a crash left it missing."""
        study = self._studies.get(search.name)
        if study is not None:
            return study
        with self._optuna_errors(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                study = optuna.load_study(study_name=search.optuna_study_name, storage=self.optuna_storage)
            except KeyError:
                if self.read_only:
                    raise StoreError(f"search {search.name!r} in {self.display_url} has no Optuna study (a crash "
                                     "left it missing): `nas search resume` repairs it") from None
                study = optuna.create_study(study_name=search.optuna_study_name, storage=self.optuna_storage,
                                            directions=list(search.directions))
                study.set_metric_names(list(search.objectives))
                for key, value in (("nas_search_id", search.id), ("space", search.space),
                                   ("dataset", search.dataset), ("seed", search.seed), ("config", search.config),
                                   ("status", search.status)):
                    study.set_user_attr(key, value)
        self._studies[search.name] = study
        return study

    def get_search(self, name: str) -> SearchRecord:
        """The search named ``name``.

        Raises:
            StoreError: no such search (the message lists the known names).
        """
        with self._session() as session:
            return SearchRecord._of(self._search_row(session, name))

    def list_searches(self) -> list[SearchRecord]:
        """Every search, oldest first."""
        with self._session() as session:
            return [SearchRecord._of(r) for r in session.scalars(select(SearchModel).order_by(SearchModel.id))]

    def set_search_status(self, name: str, status: str, error: str | None = None) -> SearchRecord:
        """Set a search's status (``running``, ``finished``, ``failed``, ``interrupted``) and, when given, its
        ``error`` (one line, at most 2,000 characters; ``""`` clears it). Mirrored to the study's user attributes
        ``status`` and ``error`` for the dashboard (the columns are what the platform reads)."""
        if status not in SEARCH_STATUSES:
            raise ValueError(f"search status must be one of {', '.join(SEARCH_STATUSES)}, got {status!r}")
        text = None if error is None else " ".join(str(error).split())[:2000]
        with self._session() as session:
            row = self._search_row(session, name)
            row.status, row.updated = str(status), utcnow()
            if text is not None:
                row.error = text
        record = SearchRecord._of(row)
        with self._optuna_errors():
            study = self._study(record)
            study.set_user_attr("status", str(status))
            if text is not None and (text or study.user_attrs.get("error")):
                study.set_user_attr("error", text)
        return record

    def set_search_budget(self, name: str, budget: int) -> SearchRecord:
        """Set a search's budget (trials to finish); mirrored to the study's user attribute ``budget``."""
        if int(budget) < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        with self._session() as session:
            row = self._search_row(session, name)
            row.budget, row.updated = int(budget), utcnow()
        record = SearchRecord._of(row)
        with self._optuna_errors():
            self._study(record).set_user_attr("budget", int(budget))
        return record

    def set_search_job(self, name: str, job_id: str, address: str) -> SearchRecord:
        """Record the Ray job that runs the search (``nas search submit``) and its job server's address."""
        with self._session() as session:
            row = self._search_row(session, name)
            row.job_id, row.job_address, row.updated = str(job_id), str(address), utcnow()
        return SearchRecord._of(row)

    # ------------------------------------------------------------------------------------------- leases

    def acquire_lease(self, name: str, *, owner: str, stale_after_s: float, host: str, pid: int,
                      pid_started: float, holder_alive: Any = None) -> LeaseRecord:
        """Take the search's lease for the driver ``owner``, or raise :class:`LeaseError` if a live driver holds it.

        A lease is free when no row exists, when ``owner`` already holds it, when its heartbeat is older than
        ``stale_after_s`` seconds, or when ``holder_alive(lease)`` (a callable; e.g. "is that pid alive on this
        host") returns ``False``. Taking over is a conditional update on the old owner and heartbeat, so of two
        drivers racing for a stale lease exactly one wins.
        """
        now = utcnow()
        with self._session() as session:
            search = self._search_row(session, name)
            row = session.get(LeaseModel, search.id)
            if row is None:
                session.add(LeaseModel(search_id=search.id, owner=owner, host=host, pid=int(pid),
                                       pid_started=float(pid_started), acquired=now, heartbeat=now))
                try:
                    session.flush()
                except SQLAlchemyError:
                    session.rollback()
                    raise LeaseError(f"search {name!r} was just taken by another driver; try again") from None
                return LeaseRecord(name, owner, host, int(pid), float(pid_started), _aware(now), _aware(now))
            held = LeaseRecord(name, row.owner, row.host, row.pid, row.pid_started, _aware(row.acquired),
                               _aware(row.heartbeat))
            age = (now - row.heartbeat).total_seconds()
            dead = holder_alive is not None and not holder_alive(held)
            if row.owner != owner and age <= stale_after_s and not dead:
                raise LeaseError(
                    f"search {name!r} is being driven by another process (pid {row.pid} on {row.host}, last "
                    f"heartbeat {max(age, 0):.0f} s ago): wait for it to end or stop it; a driver that died is taken "
                    f"over once its heartbeat is {stale_after_s:.0f} s old")
            taken = session.execute(sa.update(LeaseModel).where(
                LeaseModel.search_id == search.id, LeaseModel.owner == row.owner,
                LeaseModel.heartbeat == row.heartbeat).values(
                owner=owner, host=host, pid=int(pid), pid_started=float(pid_started), acquired=now, heartbeat=now))
            if taken.rowcount != 1:
                raise LeaseError(f"search {name!r} was just taken by another driver")
            return LeaseRecord(name, owner, host, int(pid), float(pid_started), _aware(now), _aware(now))

    def get_lease(self, name: str) -> LeaseRecord | None:
        """The search's lease, ``None`` when no driver holds it."""
        with self._session() as session:
            search = self._search_row(session, name)
            row = session.get(LeaseModel, search.id)
            if row is None:
                return None
            return LeaseRecord(name, row.owner, row.host, row.pid, row.pid_started, _aware(row.acquired),
                               _aware(row.heartbeat))

    def heartbeat(self, name: str, owner: str) -> bool:
        """Refresh ``owner``'s lease of the search; ``False`` when it no longer holds it (it was taken over)."""
        with self._session() as session:
            search = self._search_row(session, name)
            done = session.execute(sa.update(LeaseModel).where(
                LeaseModel.search_id == search.id, LeaseModel.owner == owner).values(heartbeat=utcnow()))
            return done.rowcount == 1

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (only ``owner``'s; anyone else's is left alone)."""
        with self._session() as session:
            search = self._search_row(session, name)
            session.execute(sa.delete(LeaseModel).where(LeaseModel.search_id == search.id,
                                                        LeaseModel.owner == owner))

    # ------------------------------------------------------------------------------------- architectures

    def add_architecture(self, hash: str, *, space: str, derivation: str, arch: str | None, onnx: bytes,
                         params: int, flops: int) -> ArchitectureRecord:
        """Store an architecture under its canonical graph hash; idempotent.

        A hash already stored is left exactly as it is (the first write wins), and its record is returned.
        """
        if not hash:
            raise ValueError("an architecture needs its hash")
        with self._session() as session:
            row = session.get(ArchitectureModel, hash)
            if row is None:
                row = ArchitectureModel(hash=hash, space=space, derivation=derivation, arch=arch, onnx=bytes(onnx),
                                        params=int(params), flops=int(flops), created=utcnow())
                session.add(row)
                session.flush()
            return ArchitectureRecord._of(row)

    def get_architecture(self, hash: str, with_onnx: bool = False) -> ArchitectureRecord:
        """The architecture with this hash, with its ONNX bytes when ``with_onnx``.

        Raises:
            StoreError: no architecture has this hash.
        """
        with self._session() as session:
            query = select(ArchitectureModel).where(ArchitectureModel.hash == hash)
            if with_onnx:
                query = query.options(undefer(ArchitectureModel.onnx))
            row = session.scalars(query).one_or_none()
            if row is None:
                raise StoreError(f"no architecture with hash {hash!r} in {self.display_url}")
            return ArchitectureRecord._of(row, with_onnx)

    def known_hashes(self, search_name: str) -> dict[str, str]:
        """Every hash this search has trained or scored, mapped to what it knows of it.

        The value is the status of the hash's latest trial (``queued``, ``running``, ``ok``, ``stopped``,
        ``failed``), or ``scored`` when it has scores but no trial. Use ``h in known`` to de-duplicate against
        everything, or filter by value (e.g. retry hashes whose value is ``failed``).
        """
        with self._session() as session:
            search = self._search_row(session, search_name)
            known = {h: "scored" for h in session.scalars(
                select(ScoreModel.arch_hash).where(ScoreModel.search_id == search.id).distinct())}
            for h, status in session.execute(select(TrialModel.arch_hash, TrialModel.status)
                                             .where(TrialModel.search_id == search.id).order_by(TrialModel.id)):
                known[h] = status
            return known

    # ------------------------------------------------------------------------------------ scores, lineage

    def add_scores(self, search_name: str, hash: str, scores: Mapping[str, tuple[float, float]]) -> int:
        """Store an architecture's proxy/predictor scores: ``{name: (value, seconds)}``.

        Values may be ``nan`` or ``±inf`` and come back exactly. A (search, hash, name) already stored keeps its
        first value. Returns how many scores were new.

        Raises:
            StoreError: unknown search, or an architecture not yet stored with :meth:`add_architecture`.
        """
        with self._session() as session:
            search = self._search_row(session, search_name)
            self._require_architecture(session, hash)
            have = set(session.scalars(select(ScoreModel.name).where(
                ScoreModel.search_id == search.id, ScoreModel.arch_hash == hash)))
            now, added = utcnow(), 0
            for name, (value, seconds) in scores.items():
                if name in have:
                    continue
                stored, kind = encode_float(value)
                secs = float(seconds) if seconds is not None and math.isfinite(seconds) else None
                session.add(ScoreModel(search_id=search.id, arch_hash=hash, name=name, value=stored,
                                       value_kind=kind, seconds=secs, created=now))
                have.add(name)
                added += 1
            return added

    def scores_of(self, search_name: str, hash: str | None = None) -> list[ScoreRecord]:
        """A search's scores (of one architecture when ``hash`` is given), in the order they were added."""
        with self._session() as session:
            search = self._search_row(session, search_name)
            query = select(ScoreModel).where(ScoreModel.search_id == search.id).order_by(ScoreModel.id)
            if hash is not None:
                query = query.where(ScoreModel.arch_hash == hash)
            return [ScoreRecord(search_name, r.arch_hash, r.name, decode_float(r.value, r.value_kind), r.seconds,
                                _aware(r.created)) for r in session.scalars(query)]

    def add_lineage(self, search_name: str, child_hash: str, parents: Sequence[str],
                    operator: str) -> LineageRecord:
        """Record how ``child_hash`` was derived (``parents`` empty for a sampled root); the first record wins.

        Raises:
            StoreError: unknown search, or a child not yet stored with :meth:`add_architecture`.
        """
        with self._session() as session:
            search = self._search_row(session, search_name)
            self._require_architecture(session, child_hash)
            row = session.scalars(select(LineageModel).where(LineageModel.search_id == search.id,
                                                             LineageModel.child_hash == child_hash)).one_or_none()
            if row is None:
                row = LineageModel(search_id=search.id, child_hash=child_hash, parents=list(parents),
                                   operator=operator, created=utcnow())
                session.add(row)
                session.flush()
            return LineageRecord(search_name, row.child_hash, tuple(row.parents), row.operator, _aware(row.created))

    def lineage_of(self, search_name: str) -> list[LineageRecord]:
        """A search's lineage records, in the order they were added."""
        with self._session() as session:
            search = self._search_row(session, search_name)
            rows = session.scalars(select(LineageModel).where(LineageModel.search_id == search.id)
                                   .order_by(LineageModel.id))
            return [LineageRecord(search_name, r.child_hash, tuple(r.parents), r.operator, _aware(r.created))
                    for r in rows]

    def _require_architecture(self, session: Session, hash: str) -> None:
        if session.get(ArchitectureModel, hash) is None:
            raise StoreError(f"no architecture with hash {hash!r} in {self.display_url}: add_architecture() first")

    # -------------------------------------------------------------------------------------------- trials

    def queue_trial(self, search_name: str, hash: str, *, generation: int,
                    resources: Mapping[str, Any] | None = None) -> int:
        """Add a trial with status ``queued`` (to be started with :meth:`mark_running`); returns its id."""
        return self._new_trial(search_name, hash, generation, resources, "queued")

    def start_trial(self, search_name: str, hash: str, *, generation: int,
                    resources: Mapping[str, Any] | None = None) -> int:
        """Add a trial with status ``running``; returns its id (finish it with :meth:`finish_trial`).

        Raises:
            StoreError: unknown search, or an architecture not yet stored with :meth:`add_architecture`.
        """
        return self._new_trial(search_name, hash, generation, resources, "running")

    def _new_trial(self, search_name: str, hash: str, generation: int, resources: Mapping[str, Any] | None,
                   status: str) -> int:
        resources = _json_ready(dict(resources or {}), "resources")
        with self._session() as session:
            search = self._search_row(session, search_name)
            self._require_architecture(session, hash)
            row = TrialModel(search_id=search.id, arch_hash=hash, generation=int(generation), status=status,
                             error="", resources=resources, epochs=[], created=utcnow())
            session.add(row)
            session.flush()
            return row.id

    def mark_running(self, trial_id: int, *, resources: Mapping[str, Any] | None = None) -> None:
        """Move a ``queued`` trial (e.g. one :meth:`reconcile` requeued) to ``running``, optionally with new
        resources.

        Raises:
            StoreError: no such trial, or it is not queued.
        """
        new_resources = None if resources is None else _json_ready(dict(resources), "resources")
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            if row.status != "queued":
                raise StoreError(f"trial {trial_id} is {row.status}, not queued")
            row.status = "running"
            if new_resources is not None:
                row.resources = new_resources

    def _trial_row(self, session: Session, trial_id: int) -> TrialModel:
        row = session.get(TrialModel, trial_id)
        if row is None:
            raise StoreError(f"no trial with id {trial_id} in {self.display_url}")
        return row

    def get_trial(self, trial_id: int) -> TrialRecord:
        """The trial with this id.

        Raises:
            StoreError: no such trial.
        """
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            return TrialRecord._of(row, session.get_one(SearchModel, row.search_id).name)

    def finish_trial(self, trial_id: int, *, status: str, error: str = "", epochs: Sequence[Mapping[str, Any]],
                     final: Mapping[str, Any] | None, objective_values: Sequence[float] | None,
                     resources: Mapping[str, Any] | None = None) -> TrialRecord:
        """Finish a queued or running trial: write its Optuna trial, upload its ONNX artifact, complete our row.

        The Optuna trial (in the search's study) has:

        - state ``COMPLETE`` with ``values = objective_values`` for ``ok``; ``PRUNED`` for ``stopped`` (for a
          single-objective search its value is the last finite ``val_acc``, as Optuna's own ``tell`` does);
          ``FAIL`` for ``failed``;
        - intermediate values: each epoch's ``val_acc`` at step ``epoch`` (1-based; the list position if absent);
        - user attributes ``hash``, ``params``, ``flops``, ``derivation``, ``arch``, ``val_acc``, ``test_acc``,
          ``score_<name>`` for every score of the hash in this search, ``nas_trial_id``, ``generation``,
          ``status``, ``resources``, and ``error`` when failed;
        - the artifact ``<hash>.onnx`` (the architecture's ONNX bytes) in :attr:`artifact_dir`.

        ``val_acc``/``test_acc`` come from ``final``, else from the last epoch. ``resources`` (e.g. the node the
        trial ran on, its start and end times) are merged into the row's ``resources`` first.

        Order and crash safety: (1) our row is marked ``optuna_pending`` (committed); (2) the Optuna trial is
        created ``RUNNING`` with all its attributes, intermediate values and the outcome (system attribute
        ``nas:result``) in one transaction; (3) the artifact is uploaded (Optuna only lets a running trial take
        one); (4) the Optuna trial gets its final state and values; (5) our row is completed. If the process
        dies after (2), :meth:`reconcile` (or calling ``finish_trial`` on this trial again) finds the Optuna
        trial by its ``nas_trial_id``, redoes (3)-(4) where needed and completes the row from ``nas:result``,
        so no duplicate Optuna trial is ever written. A death before (2) leaves the row ``running`` with no
        Optuna trial: :meth:`reconcile` requeues it.

        Raises:
            ValueError: ``status`` not ``ok``/``stopped``/``failed``; for ``ok``, ``objective_values`` missing,
                of the wrong length or containing NaN; epochs/final not JSON data. Nothing is written then.
            StoreError: no such trial, the trial already finished, or a database error.
        """
        result = self._check_result(status, error, epochs, final, objective_values)
        extra = None if resources is None else _json_ready(dict(resources), "resources")
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            search = SearchRecord._of(session.get_one(SearchModel, row.search_id))
            if row.status not in _UNFINISHED:
                raise StoreError(f"trial {trial_id} already finished ({row.status})")
            pending = row.optuna_pending
            if extra and not pending:
                row.resources = {**(row.resources or {}), **extra}
                row.gpu_fallback = _gpu_fallback(row.resources)
        n = len(search.directions)
        if result.objective_values is not None and len(result.objective_values) != n:
            raise ValueError(f"search {search.name!r} has {n} objectives ({', '.join(search.objectives)}), got "
                             f"{len(result.objective_values)} objective values")
        if pending:  # a previous attempt may have written the Optuna trial already
            existing = self._optuna_trials_by_nas_id(search).get(trial_id)
            if existing is not None:
                _log.warning("trial %d: its Optuna trial %d was written before; completing from it",
                             trial_id, existing.number)
                self._complete_from_optuna(trial_id, existing)
                return self.get_trial(trial_id)
        number = self._write_optuna_trial(trial_id, result)
        self._complete_row(trial_id, result, number)
        return self.get_trial(trial_id)

    @staticmethod
    def _check_result(status: str, error: str, epochs: Sequence[Mapping[str, Any]], final: Mapping[str, Any] | None,
                      objective_values: Sequence[float] | None) -> _Result:
        if status not in FINISHED_STATUSES:
            raise ValueError(f"a finished trial's status is one of {', '.join(FINISHED_STATUSES)}, got {status!r}")
        values = None if objective_values is None else [float(v) for v in objective_values]
        if status == "ok":
            if values is None:
                raise ValueError("an 'ok' trial needs objective_values")
            if any(math.isnan(v) for v in values):
                raise ValueError(f"an 'ok' trial's objective values must not be NaN, got {values} "
                                 "(finish it as 'failed' instead)")
        return _Result(status, str(error or ""), _json_ready([dict(e) for e in epochs], "epochs"),
                       None if final is None else _json_ready(dict(final), "final"), values)

    def _write_optuna_trial(self, trial_id: int, result: _Result) -> int:
        """Step 1 of finishing: mark our row pending, then write the Optuna trial with its artifact.

        Optuna only lets a running trial take new attributes, so the trial is created ``RUNNING`` with all its
        attributes and intermediate values (one Optuna transaction), the artifact is uploaded, and only then is
        the trial given its final state and values (:meth:`_finish_optuna`). Returns the Optuna trial's number;
        our row stays unfinished until :meth:`_complete_row`.
        """
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            search = SearchRecord._of(session.get_one(SearchModel, row.search_id))
            arch = session.scalars(select(ArchitectureModel).where(ArchitectureModel.hash == row.arch_hash)
                                   .options(undefer(ArchitectureModel.onnx))).one()
            scores = session.scalars(select(ScoreModel).where(ScoreModel.search_id == row.search_id,
                                                              ScoreModel.arch_hash == row.arch_hash)
                                     .order_by(ScoreModel.id)).all()
            row.optuna_pending = True
            created, onnx = row.created, arch.onnx
            user_attrs: dict[str, Any] = {
                "hash": arch.hash, "params": arch.params, "flops": arch.flops, "derivation": arch.derivation,
                "arch": arch.arch, "val_acc": result.metric("val_acc"), "test_acc": result.metric("test_acc"),
                **{f"score_{s.name}": decode_float(s.value, s.value_kind) for s in scores},
                "nas_trial_id": trial_id, "generation": row.generation, "status": result.status,
                "resources": row.resources}
            if result.metric("sim_cost_s") is not None:  # a table look-up's simulated cost (benchmark mode)
                user_attrs["sim_cost_s"] = result.metric("sim_cost_s")
        if result.status == "failed":
            user_attrs["error"] = result.error
        trial = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=user_attrs,
                                          system_attrs={_RESULT_ATTR: result.to_dict()},
                                          intermediate_values=result.intermediate_values())
        trial.datetime_start = _local_naive(created)
        self._study(search)
        with self._optuna_errors():
            study_id = self.optuna_storage.get_study_id_from_name(search.optuna_study_name)
            frozen = self.optuna_storage.get_trial(self.optuna_storage.create_new_trial(study_id, trial))
        self._finish_optuna(search, frozen, arch.hash, onnx, result)
        return frozen.number

    def _finish_optuna(self, search: SearchRecord, trial: FrozenTrial, hash: str, onnx: bytes,
                       result: _Result) -> None:
        """Give an Optuna trial its artifact (if missing) and, if still running, its final state and values."""
        with self._optuna_errors():
            self._ensure_artifact(trial, hash, onnx)
            attach_picture(self.optuna_storage, self.artifact_store, search.optuna_study_name, trial,
                           onnx)  # nas.viz: the picture artifact <hash>.svg and a trial note
            if trial.state == TrialState.RUNNING:
                study_id = self.optuna_storage.get_study_id_from_name(search.optuna_study_name)
                optuna_id = self.optuna_storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
                self.optuna_storage.set_trial_state_values(optuna_id, _OPTUNA_STATE[result.status],
                                                           result.optuna_values(len(search.directions)))

    def _ensure_artifact(self, trial: FrozenTrial, hash: str, onnx: bytes) -> None:
        """Make sure the Optuna trial has the artifact ``<hash>.onnx`` holding ``onnx`` (uploading or rewriting)."""
        filename = f"{hash}.onnx"
        for meta in get_all_artifact_meta(trial, storage=self.optuna_storage):
            if meta.filename != filename:
                continue
            try:
                with self.artifact_store.open_reader(meta.artifact_id) as reader:
                    if reader.read() == onnx:
                        return
            except ArtifactNotFound:
                pass
            # the metadata was written but the file is missing or cut short: write it again under the same id
            self.artifact_store.write(meta.artifact_id, io.BytesIO(onnx))
            return
        with tempfile.TemporaryDirectory(prefix="nas-artifact-") as folder:
            path = os.path.join(folder, filename)
            with open(path, "wb") as f:
                f.write(onnx)
            upload_artifact(artifact_store=self.artifact_store, file_path=path, study_or_trial=trial,
                            storage=self.optuna_storage, mimetype="application/octet-stream")

    def _complete_row(self, trial_id: int, result: _Result, number: int) -> None:
        """Step 2 of finishing: write the result into our row and clear ``optuna_pending``."""
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            row.status, row.error, row.epochs, row.final = result.status, result.error, result.epochs, result.final
            row.val_acc, row.test_acc = result.metric("val_acc"), result.metric("test_acc")
            row.objective_values = result.objective_values
            row.optuna_trial_number, row.optuna_pending, row.finished = number, False, utcnow()

    def _optuna_trials_by_nas_id(self, search: SearchRecord) -> dict[int, FrozenTrial]:
        study = self._study(search)
        with self._optuna_errors():
            trials = study.get_trials(deepcopy=False)
        return {t.user_attrs["nas_trial_id"]: t for t in trials if isinstance(t.user_attrs.get("nas_trial_id"), int)}

    def _complete_from_optuna(self, trial_id: int, trial: FrozenTrial) -> None:
        """Complete our row from an Optuna trial written before a crash (finishing the Optuna trial first)."""
        with self._session() as session:
            row = self._trial_row(session, trial_id)
            search = SearchRecord._of(session.get_one(SearchModel, row.search_id))
            arch = session.scalars(select(ArchitectureModel).where(ArchitectureModel.hash == row.arch_hash)
                                   .options(undefer(ArchitectureModel.onnx))).one()
            hash, onnx = arch.hash, arch.onnx
        result = _Result.from_dict(trial.system_attrs[_RESULT_ATTR])
        self._finish_optuna(search, trial, hash, onnx, result)
        self._complete_row(trial_id, result, trial.number)

    def reconcile(self, search_name: str) -> ReconcileReport:
        """Repair a search after a crash; call it when resuming, before starting any trial.

        - A trial whose Optuna trial was written (found by the user attribute ``nas_trial_id``) but whose row
          was not completed is completed from the Optuna trial (its artifact re-uploaded if missing); no
          duplicate Optuna trial is created.
        - Every other ``running`` trial (its training was lost) goes back to ``queued``: see
          :meth:`unfinished_trials`, then :meth:`mark_running` to train it again.

        Also creates the search's Optuna study if a crash left it missing. Calling it again changes nothing.
        """
        search = self.get_search(search_name)
        self._study(search)
        with self._session() as session:
            rows = session.execute(select(TrialModel.id, TrialModel.status, TrialModel.optuna_pending).where(
                TrialModel.search_id == search.id, TrialModel.status.in_(_UNFINISHED)).order_by(TrialModel.id)).all()
        by_nas_id = self._optuna_trials_by_nas_id(search) if any(r.optuna_pending for r in rows) else {}
        completed, requeued = [], []
        for trial_id, status, pending in rows:
            existing = by_nas_id.get(trial_id) if pending else None
            if existing is not None:
                self._complete_from_optuna(trial_id, existing)
                completed.append(trial_id)
            elif status == "running" or pending:
                with self._session() as session:
                    row = self._trial_row(session, trial_id)
                    row.status, row.optuna_pending = "queued", False
                requeued.append(trial_id)
        return ReconcileReport(tuple(completed), tuple(requeued))

    def mark_told(self, trial_ids: Sequence[int]) -> list[int]:
        """Record that the search's strategy was just told these finished trials, in this order: each gets the
        next ``tell_seq`` of its search (a trial told before keeps its number). Returns the numbers given."""
        out = []
        with self._session() as session:
            for trial_id in trial_ids:
                row = self._trial_row(session, trial_id)
                if row.status not in FINISHED_STATUSES:
                    raise StoreError(f"trial {trial_id} is {row.status}: only finished trials are told")
                if row.tell_seq is None:
                    last = session.scalar(select(sa.func.max(TrialModel.tell_seq)).where(
                        TrialModel.search_id == row.search_id))
                    row.tell_seq = 0 if last is None else int(last) + 1
                    session.flush()
                out.append(row.tell_seq)
        return out

    def told_trials(self, search_name: str) -> list[TrialRecord]:
        """The finished trials in the order the strategy was told them: by ``tell_seq``, then (finished but not
        yet told, e.g. the driver died between the two) by id."""
        finished = self.trials_of(search_name, status=FINISHED_STATUSES)
        return sorted(finished, key=lambda t: (t.tell_seq is None, t.tell_seq if t.tell_seq is not None else t.id,
                                               t.id))

    def unfinished_trials(self, search_name: str) -> list[TrialRecord]:
        """The search's ``queued`` and ``running`` trials, oldest first (after :meth:`reconcile`: only queued)."""
        return self.trials_of(search_name, status=_UNFINISHED)

    def trials_of(self, search_name: str, status: str | Iterable[str] | None = None) -> list[TrialRecord]:
        """The search's trials in id order, optionally only those with ``status`` (one or several)."""
        statuses = None if status is None else ([str(status)] if isinstance(status, str) else
                                                [str(s) for s in status])
        if statuses is not None and (bad := [s for s in statuses if s not in TRIAL_STATUSES]):
            raise ValueError(f"trial status must be one of {', '.join(TRIAL_STATUSES)}, got {bad}")
        with self._session() as session:
            search = self._search_row(session, search_name)
            query = select(TrialModel).where(TrialModel.search_id == search.id).order_by(TrialModel.id)
            if statuses is not None:
                query = query.where(TrialModel.status.in_(statuses))
            return [TrialRecord._of(r, search_name) for r in session.scalars(query)]

    def best(self, search_name: str, k: int = 5) -> list[TrialRecord]:
        """The ``k`` trials with the highest ``val_acc`` among ``ok`` and ``stopped`` ones (ties: older first)."""
        with self._session() as session:
            search = self._search_row(session, search_name)
            rows = session.scalars(select(TrialModel).where(
                TrialModel.search_id == search.id, TrialModel.status.in_(("ok", "stopped")),
                TrialModel.val_acc.is_not(None)).order_by(TrialModel.val_acc.desc(), TrialModel.id).limit(k))
            return [TrialRecord._of(r, search_name) for r in rows]

    def pareto_front(self, search_name: str) -> list[TrialRecord]:
        """The ``ok`` trials not dominated under the search's objectives and directions, in id order.

        Computed by Optuna (``Study.best_trials`` over the study's ``COMPLETE`` trials), so it is exactly the
        front the dashboard shows; ``stopped`` trials (partly trained) and failed ones are not candidates.
        For a single objective this is the best trial(s).
        """
        search = self.get_search(search_name)
        with self._optuna_errors():
            numbers = [t.number for t in self._study(search).best_trials]
        if not numbers:
            return []
        with self._session() as session:
            rows = session.scalars(select(TrialModel).where(
                TrialModel.search_id == search.id, TrialModel.status == "ok",
                TrialModel.optuna_trial_number.in_(numbers)).order_by(TrialModel.id))
            return [TrialRecord._of(r, search_name) for r in rows]

    def curve(self, search_name: str) -> list[float]:
        """Best-so-far ``val_acc`` over the ``ok``/``stopped`` trials that have one, in trial (id) order."""
        curve: list[float] = []
        for trial in self.trials_of(search_name, status=("ok", "stopped")):
            if trial.val_acc is not None:
                curve.append(trial.val_acc if not curve else max(curve[-1], trial.val_acc))
        return curve


_RETRIED = ("create_search", "get_search", "list_searches", "set_search_status", "set_search_budget",
            "set_search_job", "acquire_lease", "get_lease", "heartbeat", "release_lease", "add_architecture",
            "get_architecture", "known_hashes", "add_scores", "scores_of", "add_lineage", "lineage_of", "queue_trial",
            "start_trial", "mark_running", "get_trial", "finish_trial", "reconcile", "mark_told", "told_trials",
            "unfinished_trials", "trials_of", "best", "pareto_front", "curve")
"""The store's operations that retry a lost connection (every public method that reads or writes)."""


def _with_retries(method: Any) -> Any:
    @functools.wraps(method)
    def retried(self: Store, *args: Any, **kwargs: Any) -> Any:
        return self._retrier.call(lambda: method(self, *args, **kwargs), method.__name__)

    return retried


for _name in _RETRIED:
    setattr(Store, _name, _with_retries(getattr(Store, _name)))


def _gpu_fallback(resources: Mapping[str, Any]) -> bool:
    """Whether a trial's ``resources`` say it asked for a GPU but trained on another device (the CPU)."""
    try:
        asked = float(resources.get("gpu") or 0) > 0
    except (TypeError, ValueError):
        return False
    device = resources.get("device")
    return asked and device is not None and not str(device).startswith("cuda")


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any, busy_ms: int = _SQLITE_BUSY_MS,
                       read_only: bool = False) -> None:
    """Every SQLite connection: wait on locks, enforce foreign keys, WAL journal (fails on a non-SQLite file).

    A read-only connection (:func:`~nas.store.sqlite_read_only.connect_read_only`) keeps the journal mode as it is
    and refuses writes (``query_only``)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        if read_only:
            cursor.execute("PRAGMA query_only = ON")
            cursor.execute("SELECT COUNT(*) FROM sqlite_master")  # fails here on a file that is not SQLite
        else:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()

