"""Database faults, against a real PostgreSQL server (started by the test session, stopped and restarted mid-run
through its own ``pg_ctl``: tests/_postgres.py) and real SQLite files; no mocks.

- At start, an unreachable or corrupt database is one ``error:`` line and exit code 2.
- During a search, a lost connection is retried with backoff (``--db-retry-s``): a search whose PostgreSQL server
  is restarted mid-run finishes with no trial lost; a database that stays away longer stops the search
  (``interrupted``, exit 2) with every trial recorded before kept, and ``nas search resume`` finishes it without
  training any of those again.
- The store's own operations: a call waits for a restarted server; past ``retry_s`` it raises
  :class:`~nas.store.StoreUnavailableError` and later calls fail at once until the database is back; a SQLite lock
  held past the busy timeout is retried the same way.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml

from nas.store import Store, StoreUnavailableError
from tests._postgres import PostgresServer

BUDGET = 6
CONFIG = {"space": "einspace", "dataset": "digits", "strategy": "random", "seeds": [], "budget": BUDGET,
          "batch": 2, "scorers": [], "seed": 5, "train": {"epochs": 2, "max_batches_per_epoch": 8},
          "tune": {"num_cpus": 2, "scheduler": "fifo"}}


def _nas(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli.app", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


def _finished(url: str) -> list[tuple[int, str, str, int | None]]:
    """(id, hash, status, optuna number) of the finished trials; an unreachable server reads as none."""
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text(
                "SELECT id, arch_hash, status, optuna_trial_number FROM nas_trials "
                "WHERE status IN ('ok', 'stopped', 'failed') ORDER BY id")).fetchall()
        return [tuple(r) for r in rows]
    except sqlalchemy.exc.SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def _start_search(tmp_path: Path, url: str, name: str, retry_s: float) -> subprocess.Popen[str]:
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    return subprocess.Popen(_nas("search", "run", "--name", name, "--config", str(config), "--db", url,
                                 "--db-retry-s", str(retry_s)), cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_finished(url: str, process: subprocess.Popen[str], n: int, timeout: float = 300) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _finished(url)
        if len(rows) >= n:
            return rows
        if process.poll() is not None:
            raise AssertionError(f"the search ended early: {process.stderr.read()[-3000:]}")
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"fewer than {n} trials finished in {timeout} s")


def _check_complete(url: str, before: list[Any], name: str) -> None:
    """Every trial finished before the outage is still there, unchanged; the budget is met; no hash twice; Optuna
    has one trial per finished row."""
    rows = _finished(url)
    assert set(before) <= set(rows)
    assert len(rows) == BUDGET
    assert max(Counter(h for _, h, _, _ in rows).values()) == 1
    with Store(url) as store:
        assert store.get_search(name).status == "finished"
        assert store.unfinished_trials(name) == []
        import optuna

        study = optuna.load_study(study_name=name, storage=store.optuna_storage)
        assert sorted(t.user_attrs["nas_trial_id"] for t in study.trials) == [r[0] for r in rows]


# --------------------------------------------------------------------------------------------------- at start


def test_an_unreachable_database_at_start_is_one_error_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://nas:s3cret@127.0.0.1:{_free_port()}/nas"
    for args in (("search", "ls", "--db", url), ("search", "run", "--budget", "2", "--db", url)):
        result = subprocess.run(_nas(*args), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        line = _one_error_line(result)
        assert "cannot open the store" in line and "127.0.0.1" in line and "s3cret" not in result.stderr


def test_a_corrupt_database_at_start_is_one_error_line(tmp_path: Path) -> None:
    garbage = tmp_path / "corrupt.db"
    content = b"SQLite format 3\x00" + bytes(range(256)) * 40  # a damaged header, then noise
    garbage.write_bytes(content)
    for args in (("search", "ls"), ("search", "run", "--budget", "2")):
        result = subprocess.run(_nas(*args, "--db", f"sqlite:///{garbage}"), cwd=tmp_path, capture_output=True,
                                text=True, timeout=120)
        assert str(garbage) in _one_error_line(result)
    assert garbage.read_bytes() == content


# -------------------------------------------------------------------------------------------- store operations


def _small_store(url: str, **kwargs: Any) -> Store:
    store = Store(url, **kwargs)
    store.create_search("s", space="e", dataset="d", config={}, seed=0, objectives=["val_acc"],
                        directions=["maximize"])
    return store


def test_an_operation_waits_for_a_restarted_postgres_server(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.new_database()
    with _small_store(url, retry_s=120, artifact_dir=tmp_path / "a") as store:
        postgres_server.stop()
        restarter = threading.Timer(3.0, postgres_server.start)
        restarter.start()
        try:
            assert store.get_search("s").name == "s"  # blocks while the server is down, then succeeds
        finally:
            restarter.join()
        assert store._retrier.outages == 1 and not store._retrier.down


def test_past_retry_s_the_store_is_unavailable_until_the_database_is_back(postgres_server: PostgresServer,
                                                                         tmp_path: Path) -> None:
    url = postgres_server.new_database()
    with _small_store(url, retry_s=1, artifact_dir=tmp_path / "a") as store:
        postgres_server.stop()
        try:
            with pytest.raises(StoreUnavailableError, match=r"is unreachable \(for 1 s of retries\): get_search"):
                store.get_search("s")
            assert store._retrier.down
            with pytest.raises(StoreUnavailableError):  # down: one attempt, no second window of retries
                store.trials_of("s")
        finally:
            postgres_server.start()
        assert store.get_search("s").name == "s" and not store._retrier.down


def _lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds an exclusive lock on the SQLite file ``path`` for ``seconds``."""
    code = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], timeout=5); c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True); time.sleep(float(sys.argv[2])); c.rollback()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_sqlite_lock_held_past_the_busy_timeout_is_retried(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    with _small_store(url, retry_s=60, sqlite_busy_s=0.2) as store:
        holder = _lock(tmp_path / "nas.db", 2.0)
        store.set_search_status("s", "interrupted")  # waits past the busy timeout, then succeeds
        assert holder.wait(timeout=30) == 0
        assert store.get_search("s").status == "interrupted" and store._retrier.outages == 1
    with _small_store(f"sqlite:///{tmp_path / 'other.db'}", retry_s=0.5, sqlite_busy_s=0.2) as store:
        holder = _lock(tmp_path / "other.db", 4.0)
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            store.set_search_status("s", "interrupted")
        assert holder.wait(timeout=30) == 0
        assert store.get_search("s").status == "running"


# ------------------------------------------------------------------------------------------------- searches


def test_a_search_survives_a_postgres_restart_with_no_trial_lost(postgres_server: PostgresServer,
                                                                 tmp_path: Path) -> None:
    url = postgres_server.new_database()
    process = _start_search(tmp_path, url, "restarted", retry_s=120)
    before = _wait_for_finished(url, process, 2)
    postgres_server.stop()
    time.sleep(5)  # trials keep training and finishing meanwhile; their results wait in the driver
    postgres_server.start()
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert "is unreachable" in stderr and "reachable again" in stderr  # the driver did meet the outage
    _check_complete(url, before, "restarted")


def test_a_database_gone_for_longer_interrupts_the_search_which_resumes(postgres_server: PostgresServer,
                                                                        tmp_path: Path) -> None:
    url = postgres_server.new_database()
    process = _start_search(tmp_path, url, "gone", retry_s=3)
    before = _wait_for_finished(url, process, 2)
    postgres_server.stop()
    try:
        _, stderr = process.communicate(timeout=300)
    finally:
        postgres_server.start()
    line = _one_error_line(subprocess.CompletedProcess(process.args, process.returncode, "", stderr))
    assert "is unreachable" in line and "interrupted" in line and "nas search resume gone" in line
    assert set(before) <= set(_finished(url))
    result = subprocess.run(_nas("search", "resume", "gone", "--db", url), cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_complete(url, before, "gone")


def test_schema_and_integrity_errors_are_not_retried(tmp_path: Path) -> None:
    from nas.store.retry import is_transient

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
        connection.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
    errors = []
    for sql in ("SELECT * FROM no_such_table", "INSERT INTO t VALUES (1)"):
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(sql))
        except sqlalchemy.exc.SQLAlchemyError as err:
            errors.append(err)
    engine.dispose()
    assert len(errors) == 2 and not any(is_transient(e) for e in errors)
    with _small_store(f"sqlite:///{tmp_path / 'nas.db'}", retry_s=60) as store:
        with pytest.raises(Exception, match="no search named"):  # an ordinary error: raised at once, no retries
            store.get_search("nope")
        assert store._retrier.outages == 0
