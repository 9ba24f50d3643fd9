"""Read-only stores (issue 17, item 9): ``nas search ls/show/export`` open a store for reading only. Nothing is
created, migrated or written, not even a SQLite side file, so they work on a file or folder the user cannot
write. Writing commands keep their behaviour, and a foreign SQLite file takes our tables only when
``--allow-foreign-db`` asks for it.

The tests run as root here, where ``chmod`` does not stop a write, so "nothing is written" is checked directly:
the file's bytes and mtime stay the same, no ``-wal``/``-shm`` file appears, the journal mode stays as it was,
and every write through a read-only store fails.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nas.store import Store, StoreError
from nas.store.sqlite_read_only import is_wal
from tests._cli import run_cli as _cli
from tests.nas.store.test_migrations import _old_store
from tests.nas.store.test_store import NAME, _populate

TABLE = Path(__file__).resolve().parents[4] / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"




def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and its mtime (ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A closed store (WAL mode, like every store) with one populated search, in its own folder."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "s.db"
    with Store(f"sqlite:///{path}") as store:
        _populate(store)
    assert is_wal(path) and not path.with_name("s.db-wal").exists()
    return path


def _read_commands(url: str, out: Path) -> list[tuple[str, ...]]:
    return [("search", "ls", "--db", url), ("search", "ls", "--db", url, "--json"),
            ("search", "show", NAME, "--db", url), ("search", "export", NAME, "--db", url, "--top", "2", "--out",
                                                    str(out))]


def test_read_commands_work_on_a_read_only_store_and_write_nothing(store_file: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder, url = store_file.parent, f"sqlite:///{store_file}"
    before = _state(folder)
    store_file.chmod(0o444)
    folder.chmod(0o555)
    try:
        outputs = []
        for args in _read_commands(url, tmp_path / "export"):
            code, out, err = _cli(capsys, *args)
            assert code == 0, (args, err)
            outputs.append(out)
    finally:
        folder.chmod(0o755)
        store_file.chmod(0o644)
    assert NAME in outputs[0] and json.loads(outputs[1])[0]["name"] == NAME and NAME in outputs[2]
    assert len(list((tmp_path / "export").glob("*.onnx"))) == 2
    assert _state(folder) == before  # same files (no -wal, no -shm), same bytes, same mtimes
    assert is_wal(store_file)  # the journal mode is as it was


def test_a_store_in_rollback_journal_mode_stays_so(store_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(store_file) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")
    before = _state(store_file.parent)
    code, out, err = _cli(capsys, "search", "ls", "--db", f"sqlite:///{store_file}")
    assert code == 0 and NAME in out, err
    assert _state(store_file.parent) == before and not is_wal(store_file)


def test_a_read_command_beside_a_live_writer_sees_its_commits(store_file: Path) -> None:
    """While a driver has the store open (its -wal file exists), a reader sees the driver's latest commits."""
    url = f"sqlite:///{store_file}"
    with Store(url) as writer:
        writer.set_search_status(NAME, "finished")
        assert store_file.with_name("s.db-wal").exists()
        with Store(url, read_only=True) as reader:
            assert reader.get_search(NAME).status == "finished"


def test_every_write_through_a_read_only_store_fails(store_file: Path) -> None:
    before = _state(store_file.parent)
    with Store(f"sqlite:///{store_file}", read_only=True) as store:
        assert store.get_search(NAME).name == NAME
        writes = [lambda: store.set_search_status(NAME, "finished"),
                  lambda: store.add_scores(NAME, "aa11", {"zen": (1.0, 0.1)}),
                  lambda: store.create_search("t", space="e", dataset="d", config={}, seed=0,
                                              objectives=["val_acc"], directions=["maximize"])]
        for write in writes:
            with pytest.raises(StoreError, match="readonly"):
                write()
    assert _state(store_file.parent) == before


def test_reading_never_creates_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = _cli(capsys, "search", "ls", "--db", f"sqlite:///{missing}")
    assert code == 2 and err.startswith("error: no store at") and err.count("\n") == 1
    code, _, err = _cli(capsys, "store", "upgrade", "--db", f"sqlite:///{missing}")
    assert code == 2 and err.startswith("error: no store at") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_old_store_is_read_after_nas_store_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A read command never migrates: on a store that needs it, one line names ``nas store upgrade``."""
    url = _old_store(tmp_path)
    before = _state(tmp_path)
    code, _, err = _cli(capsys, "search", "ls", "--db", url)
    assert code == 2 and err.count("\n") == 1, err
    assert "older than this nas-platform's" in err and f"nas store upgrade --db {url}" in err
    assert _state(tmp_path) == before
    code, out, err = _cli(capsys, "store", "upgrade", "--db", url)
    assert code == 0 and "schema revision" in out, err
    code, out, err = _cli(capsys, "search", "ls", "--db", url)
    assert code == 0 and NAME in out, err


def test_a_read_only_postgresql_session_refuses_writes(postgres_server, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = postgres_server.new_database()
    with Store(url) as store:
        _populate(store)
    with Store(url, read_only=True) as store:
        assert [s.name for s in store.list_searches()] == [NAME]
        with pytest.raises(StoreError, match="read-only transaction"):
            store.set_search_status(NAME, "finished")
    with Store(url) as store:
        assert store.get_search(NAME).status == "running"


# ------------------------------------------------------------------------------- a foreign SQLite file, opted in


def _their_db(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        connection.executemany("INSERT INTO customers (name) VALUES (?)", [("ada",), ("grace",), ("edsger",)])
    connection.close()
    return _theirs(path)


def _theirs(path: Path) -> list[tuple]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT * FROM customers ORDER BY id").fetchall()
        schema = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'customers'").fetchall()
    connection.close()
    return [*schema, *rows]


def test_a_foreign_sqlite_file_takes_our_tables_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "their.db"
    theirs = _their_db(path)
    with pytest.raises(StoreError, match="another application's database.*--allow-foreign-db"):
        Store(f"sqlite:///{path}")
    assert _theirs(path) == theirs
    with Store(f"sqlite:///{path}", allow_foreign=True) as store:
        _populate(store)
    assert _theirs(path) == theirs  # their table and rows untouched
    with Store(f"sqlite:///{path}", read_only=True) as store:  # now it holds a store: no flag needed to read it
        assert [s.name for s in store.list_searches()] == [NAME]


@pytest.mark.skipif(not TABLE.is_file(), reason=f"no NAS-Bench-Macro table at {TABLE}")
def test_search_run_allow_foreign_db(tmp_path: Path) -> None:
    """The flag on the command line: a table search (no Ray) in another application's file."""
    path = tmp_path / "their.db"
    theirs = _their_db(path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-m", "nas.cli.app", "search", "run", "--name", "m", "--space",
                             "nb-macro", "--evaluator", f"table:{TABLE}", "--budget", "2", "--db", f"sqlite:///{path}",
                             "--allow-foreign-db"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _theirs(path) == theirs
    with Store(f"sqlite:///{path}", read_only=True) as store:
        assert store.get_search("m").status == "finished"
