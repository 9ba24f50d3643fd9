"""``nas search submit | logs | stop``: a search as a Ray job on an existing cluster (:mod:`nas.search.jobs`).

Examples::

    nas search submit --address http://head:8265 --db postgresql+psycopg://nas:pw@db:5432/nas \\
        --name big --config configs/search_default.yaml --wait
    nas search submit --address http://head:8265 --db ... --working-dir . --requirements requirements.txt
    nas search logs big --db postgresql+psycopg://...      # what the job printed so far (--follow: until it ends)
    nas search stop big --db postgresql+psycopg://...      # the search ends interrupted; `resume` continues it
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nas.cli.search import DB_RETRY_S, AllowForeignOpt, DbRetryOpt, NameArg, app
from nas.util.secrets import shell_command

_EXIT = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3}
"""``--wait``'s exit code for each final job status."""

DbRequired = Annotated[str, typer.Option("--db", help="the store's SQLAlchemy URL, reachable from the head node "
                                                      "(PostgreSQL, or a SQLite file on the head's disk)")]
JobServerOpt = Annotated[str, typer.Option("--address", help="the cluster's job server, http://HOST:8265")]


@app.command("submit")
def submit(
    address: JobServerOpt,
    db: DbRequired,
    name: Annotated[str, typer.Option(help="the search's name (and its Optuna study's)")] = "default",
    config: Annotated[Path | None, typer.Option(help="search config YAML (see configs/search_default.yaml)")] = None,
    budget: Annotated[int | None, typer.Option(min=1, help="candidates to train")] = None,
    dataset: Annotated[str | None, typer.Option(help="a built-in dataset, a path every node sees, or a file "
                                                        "inside --working-dir (relative)")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="training epochs per candidate")] = None,
    cpus_per_trial: Annotated[float | None, typer.Option(help="CPUs per trial (torch threads)")] = None,
    gpus_per_trial: Annotated[float | None, typer.Option(help="GPUs per trial (fractions share a GPU)")] = None,
    working_dir: Annotated[Path | None, typer.Option(help="a folder shipped with the job (code, data); its "
                                                             "copy is the job's working directory")] = None,
    requirements: Annotated[Path | None, typer.Option(help="a pip requirements file installed for the job on "
                                                              "every node it uses")] = None,
    pip: Annotated[list[str] | None, typer.Option(help="a pip requirement for the job (repeatable)")] = None,
    wait: Annotated[bool, typer.Option(help="follow the job's output until it ends; exit 0 when it succeeded, 1 "
                                            "when it failed, 3 when it was stopped")] = False,
    db_retry_s: DbRetryOpt = DB_RETRY_S,
    allow_foreign_db: AllowForeignOpt = False,
    python: Annotated[str, typer.Option(help="the Python on the head node that runs the search")] = "python",
) -> None:
    """Submit a search to a Ray cluster's job server: prints the job id, which is stored with the search."""
    from nas.search import SearchConfig
    from nas.search.jobs import JobRequest, follow_job, read_requirements, submit_search
    from nas.search.validate import check_search_name

    check_search_name(name)
    data: dict[str, Any] = SearchConfig.from_yaml(config).to_dict() if config else {}
    data.update({k: v for k, v in {"budget": budget, "dataset": dataset}.items() if v is not None})
    tune = {**(data.get("tune") or {}), **{k: v for k, v in (("cpus_per_trial", cpus_per_trial),
                                                              ("gpus_per_trial", gpus_per_trial)) if v is not None}}
    if tune:
        data["tune"] = tune
    if epochs is not None:
        data["train"] = {**(data.get("train") or {}), "epochs": epochs}
    search_config = SearchConfig.from_dict(data)  # a bad configuration fails here, not on the cluster
    packages = tuple(read_requirements(requirements)) if requirements else ()
    packages += tuple(pip or ())
    request = JobRequest(name, search_config.to_dict(), db, address.rstrip("/"), working_dir, packages, db_retry_s,
                         python, allow_foreign_db)
    job_id = submit_search(request)
    typer.echo(job_id)
    hint = ("  follow: " + shell_command("nas", "search", "logs", name, "--db", _masked(db), "--follow") + "\n"
            "  stop:   " + shell_command("nas", "search", "stop", name, "--db", _masked(db)))
    typer.echo(f"submitted search {name!r} as job {job_id} to {request.address}\n{hint}", err=True)
    if wait:
        status = follow_job(request.address, job_id, _write)
        typer.echo(f"job {job_id}: {status}", err=True)
        raise typer.Exit(_EXIT.get(status, 1))


@app.command("logs")
def logs(
    name: NameArg,
    db: DbRequired,
    follow: Annotated[bool, typer.Option(help="keep printing until the job ends (exit code as submit --wait)")]
    = False,
) -> None:
    """What the Ray job running a submitted search printed."""
    from nas.search.jobs import follow_job, job_logs

    address, job_id = _job_of(name, db)
    if follow:
        status = follow_job(address, job_id, _write)
        typer.echo(f"job {job_id}: {status}", err=True)
        raise typer.Exit(_EXIT.get(status, 1))
    _write(job_logs(address, job_id))


@app.command("stop")
def stop(name: NameArg, db: DbRequired) -> None:
    """Stop the Ray job running a submitted search (the search ends interrupted; `nas search resume` continues)."""
    from nas.search.jobs import job_status, stop_job

    address, job_id = _job_of(name, db)
    stopped = stop_job(address, job_id)
    typer.echo(f"job {job_id}: {'stop requested' if stopped else 'already ended'} "
               f"({job_status(address, job_id)})")


def _job_of(name: str, db: str) -> tuple[str, str]:
    from nas.search.jobs import JobError
    from nas.store import Store

    with Store(db, read_only=True) as store:
        record = store.get_search(name)
    if not record.job_id or not record.job_address:
        raise JobError(f"search {name!r} was not submitted as a Ray job (`nas search submit`); it has no job")
    return record.job_address, record.job_id


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _masked(db: str) -> str:
    from nas.util.secrets import mask_url

    return mask_url(db)
