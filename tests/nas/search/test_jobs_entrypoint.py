"""The command a submitted search's job runs (``nas search submit`` -> ``nas search run`` on the head node): every
option of ``submit`` that ``run`` also has reaches it. Fast: no cluster (``test_jobs.py`` runs real jobs)."""

from __future__ import annotations

import shlex

from typer.main import get_command

from nas.cli.app import app
from nas.search.jobs import JobRequest, entrypoint


def _run_options() -> set[str]:
    run = get_command(app).commands["search"].commands["run"]  # type: ignore[attr-defined]
    return {opt for param in run.params for opt in param.opts}


def test_allow_foreign_db_reaches_the_jobs_search_run() -> None:
    plain = shlex.split(entrypoint(JobRequest("s", {}, "sqlite:///x.db", "http://h:8265"), "job-1"))
    foreign = shlex.split(entrypoint(JobRequest("s", {}, "sqlite:///x.db", "http://h:8265", allow_foreign_db=True),
                                     "job-1"))
    assert "--allow-foreign-db" not in plain
    assert foreign[:len(plain)] == plain and foreign[len(plain):] == ["--allow-foreign-db"]


def test_every_option_of_the_entrypoint_is_an_option_of_search_run() -> None:
    command = shlex.split(entrypoint(JobRequest("s", {}, "sqlite:///x.db", "http://h:8265", db_retry_s=5,
                                                allow_foreign_db=True), "job-1"))
    assert command[1:5] == ["-m", "nas.cli.app", "search", "run"]
    options = {word for word in command if word.startswith("--")}
    assert options <= _run_options(), options - _run_options()
