"""Run a search on an existing Ray cluster through its job server (Ray Jobs, ``JobSubmissionClient``).

``nas search submit`` ships the search to the cluster as one Ray job whose entrypoint is ``nas search run`` on
the head node (``--address auto``: the job's own cluster), with the search's configuration as a YAML file in the
job's ``working_dir`` (a staging folder: a copy of ``--working-dir`` when given, plus :data:`CONFIG_FILE`) and,
when asked, pip requirements, both as the job's runtime environment (Ray installs them on every node that runs
the job's trials). The job id is chosen here (:func:`new_job_id`) and passed to the entrypoint, which records it
with the search in the store (``--job-id``/``--job-address``), so ``nas search logs NAME`` and
``nas search stop NAME`` find it from the search's name.

The store must be reachable from the head node (a PostgreSQL URL, or a SQLite file on the head's disk) and the
dataset must be a built-in one, a path every node sees, or shipped inside the working directory. The Jobs SDK
needs ``ray[default]`` (``pip install 'nas-platform[cluster]'``); without it every call is a :class:`JobError`.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.errors import NasError

__all__ = ["CONFIG_FILE", "FINAL_STATUSES", "JobError", "JobRequest", "follow_job", "job_logs", "job_status",
           "new_job_id", "read_requirements", "stop_job", "submit_search"]

CONFIG_FILE = "nas_search.yaml"
"""The search's configuration inside the job's working directory."""

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED")
"""Job statuses after which a job never runs again."""


class JobError(NasError, RuntimeError):
    """A Ray job cannot be submitted, found, followed or stopped; the message names the job server and cause."""


@dataclass(frozen=True)
class JobRequest:
    """One search to submit.

    Attributes:
        name: the search's name; config: its configuration (``SearchConfig.to_dict()``); db: the store's URL as
            seen from the head node.
        address: the job server, ``http://HOST:8265``.
        working_dir: a folder shipped with the job (code, a dataset file); ``None``: only the configuration.
        pip: pip requirements installed for the job (lines of a requirements file); empty: none.
        db_retry_s: ``nas search run --db-retry-s`` of the job.
        entrypoint_python: the Python on the head node that runs the entrypoint.
        allow_foreign_db: ``nas search run --allow-foreign-db`` of the job (the store's tables may join a SQLite
            file that holds other tables).
    """

    name: str
    config: dict[str, Any]
    db: str
    address: str
    working_dir: Path | None = None
    pip: tuple[str, ...] = field(default=())
    db_retry_s: float = 120.0
    entrypoint_python: str = "python"
    allow_foreign_db: bool = False


def new_job_id(name: str) -> str:
    """A fresh submission id naming the search (letters, digits, ``-`` and ``_`` only)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40].strip("-") or "search"
    return f"nas-{safe}-{uuid.uuid4().hex[:8]}"


def entrypoint(request: JobRequest, job_id: str) -> str:
    """The shell command the job runs on the head node."""
    return shlex.join([request.entrypoint_python, "-m", "nas.cli.app", "search", "run", "--name", request.name,
                       "--config", CONFIG_FILE, "--db", request.db, "--address", "auto",
                       "--db-retry-s", f"{request.db_retry_s:g}", "--job-id", job_id,
                       "--job-address", request.address] + (["--allow-foreign-db"] if request.allow_foreign_db else []))


def submit_search(request: JobRequest) -> str:
    """Submit the search as a Ray job; returns the job id (the job runs on after this returns)."""
    job_id = new_job_id(request.name)
    with _staging(request) as folder:
        runtime_env: dict[str, Any] = {"working_dir": str(folder)}
        if request.pip:
            runtime_env["pip"] = list(request.pip)
        with _client(request.address) as client:
            try:
                return str(client.submit_job(entrypoint=entrypoint(request, job_id), submission_id=job_id,
                                             runtime_env=runtime_env, metadata={"nas_search": request.name}))
            except Exception as err:  # noqa: BLE001 - the SDK raises RuntimeError/ValueError/HTTP errors
                raise JobError(f"cannot submit search {request.name!r} to {request.address}: {_line(err)}") from None


def job_status(address: str, job_id: str) -> str:
    """The job's status (``PENDING``, ``RUNNING``, ``STOPPED``, ``SUCCEEDED``, ``FAILED``)."""
    with _client(address) as client:
        try:
            return str(client.get_job_status(job_id).value)
        except Exception as err:  # noqa: BLE001
            raise JobError(f"no job {job_id!r} at {address}: {_line(err)}") from None


def job_logs(address: str, job_id: str) -> str:
    """Everything the job printed so far."""
    with _client(address) as client:
        try:
            return str(client.get_job_logs(job_id))
        except Exception as err:  # noqa: BLE001
            raise JobError(f"cannot read the logs of job {job_id!r} at {address}: {_line(err)}") from None


def stop_job(address: str, job_id: str) -> bool:
    """Ask the job server to stop the job (SIGTERM to its entrypoint: the search ends ``interrupted``, resumable);
    ``False`` when it had already ended."""
    with _client(address) as client:
        try:
            return bool(client.stop_job(job_id))
        except Exception as err:  # noqa: BLE001
            raise JobError(f"cannot stop job {job_id!r} at {address}: {_line(err)}") from None


def follow_job(address: str, job_id: str, write: Callable[[str], None], *, poll_s: float = 1.0,
               timeout_s: float | None = None) -> str:
    """Print the job's output as it comes (``write``) until the job ends; returns its final status.

    Polls the job server every ``poll_s`` seconds (logs and status), so it works through any HTTP proxy in front
    of the dashboard. ``timeout_s`` bounds the wait (then :class:`JobError`).
    """
    shown = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = job_status(address, job_id)
        logs = job_logs(address, job_id)
        if len(logs) > shown:
            write(logs[shown:])
            shown = len(logs)
        if status in FINAL_STATUSES:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise JobError(f"job {job_id!r} at {address} is still {status} after {timeout_s:g} s")
        time.sleep(poll_s)


# --- internals ----------------------------------------------------------------------------------------------------


@contextmanager
def _client(address: str) -> Iterator[Any]:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as err:
        raise JobError(f"the Ray Jobs SDK is missing ({_line(err)}): pip install 'nas-platform[cluster]' "
                       "(ray[default])") from None
    if not address.startswith(("http://", "https://")):
        raise JobError(f"the job server address must be http://HOST:PORT (the dashboard, port 8265 by default), "
                       f"got {address!r}")
    try:
        client = JobSubmissionClient(address)
    except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError("ray[default]")...
        raise JobError(f"cannot reach the Ray job server at {address}: {_line(err)}") from None
    yield client


@contextmanager
def _staging(request: JobRequest) -> Iterator[Path]:
    """A temporary working directory: a copy of ``request.working_dir`` (if any) plus :data:`CONFIG_FILE`."""
    root = Path(tempfile.mkdtemp(prefix="nas-job-"))
    folder = root / "working_dir"
    try:
        if request.working_dir is not None:
            source = Path(request.working_dir)
            if not source.is_dir():
                raise JobError(f"--working-dir {source} is not a folder")
            shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"),
                            symlinks=True)
        else:
            folder.mkdir()
        if (folder / CONFIG_FILE).exists():
            raise JobError(f"--working-dir {request.working_dir} already holds a {CONFIG_FILE}; rename it")
        (folder / CONFIG_FILE).write_text(yaml.safe_dump(request.config, sort_keys=False), encoding="utf-8")
        yield folder
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def read_requirements(path: Path) -> Sequence[str]:
    """The requirement lines of a pip requirements file (comments and blank lines dropped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise JobError(f"cannot read the requirements file {path}: {_line(err)}") from None
    return tuple(line.strip() for line in lines if line.strip() and not line.strip().startswith("#"))
