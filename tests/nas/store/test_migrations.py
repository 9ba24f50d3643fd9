"""Schema migrations (Alembic, nas.store.migrate): a store made by the code of the last main before migrations
existed (schema 2; ``tests/nas/store/data/store_schema2_main.sql`` is its ``sqlite3 .dump``, made by that code's
``tests/test_store.py::_populate`` plus ``set_search_budget('s1', 9)``, with its Optuna artifacts beside it) is
upgraded in place when opened, keeps everything, and records its revision in our own version table beside
Optuna's ``alembic_version``."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from nas.store import Store, StoreError
from nas.store.migrate import VERSION_TABLE, head_revision, known_revisions
from tests.nas.store.test_store import NAME, _check_populated

FIXTURE = Path(__file__).with_name("data") / "store_schema2_main.sql"
ARTIFACTS = Path(__file__).with_name("data") / "store_schema2_main_artifacts"
IDS = {"ok": 1, "stopped": 2, "failed": 3, "ok2": 4}


def _old_store(tmp_path: Path) -> str:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(FIXTURE.read_text(encoding="utf-8"))
    shutil.copytree(ARTIFACTS, tmp_path / "artifacts")
    return f"sqlite:///{path}"


def _scalar(url: str, sql: str) -> object:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text(sql)).scalar()
    finally:
        engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return {c["name"] for c in sqlalchemy.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_a_store_of_todays_main_is_upgraded_and_keeps_everything(tmp_path: Path) -> None:
    url = _old_store(tmp_path)
    assert "job_id" not in _columns(url, "nas_searches")
    optuna_revision = _scalar(url, "SELECT version_num FROM alembic_version")
    with Store(url, artifact_dir=tmp_path / "artifacts") as store:
        _check_populated(store, url, IDS)
        search = store.get_search(NAME)
        assert search.budget == 9 and search.job_id is None
        assert not any(t.gpu_fallback for t in store.trials_of(NAME))
        store.set_search_job(NAME, "raysubmit_abc", "http://127.0.0.1:8265")  # a schema-3 column in use
    assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()
    assert _scalar(url, "SELECT value FROM nas_meta WHERE key = 'schema_version'") == "3"
    assert _scalar(url, "SELECT version_num FROM alembic_version") == optuna_revision  # Optuna's, untouched
    assert {"job_id", "job_address"} <= _columns(url, "nas_searches")
    with Store(url, artifact_dir=tmp_path / "artifacts") as store:  # opening again changes nothing
        assert store.get_search(NAME).job_id == "raysubmit_abc"
        assert store.get_search(NAME).job_address == "http://127.0.0.1:8265"
        _check_populated(store, url, IDS)


def test_a_new_store_starts_at_the_newest_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store(url).close()
    assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()
    assert {"0001", "0002"} <= known_revisions()


def test_a_store_from_a_newer_nas_platform_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store(url).close()
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema revision ffff_future, unknown to this nas-platform"):
        Store(url)
