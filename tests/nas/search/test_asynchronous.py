"""The asynchronous search loop and the one-driver-per-search lease, against the real parts (local Ray, SQLite,
the CLI in subprocesses; no mocks).

- a real local Ray search (2 CPUs, batch 2) where trials of different lengths overlap: the third trial starts
  while the first, longer one is still training (the round loop would have waited for it);
- leases (table searches, no Ray): a second driver on a search whose driver is alive is refused with a clear
  error; a stale lease (old heartbeat, holder on another host) is taken over; a lease whose holder process is gone
  on this host is taken over at once; the budget and error are columns of our table.
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from nas.search import SearchConfig, resume_search, run_search
from nas.search.config import EINSPACE_DIGITS_SEEDS
from nas.search.lease import STALE_AFTER_S
from nas.store import LeaseError, Store

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
MACRO = DATA / "nas-bench-macro" / "nas-bench-macro_cifar10.json"


def _mlp(width: int) -> str:
    return (f"(routing im2col[kernel=8,stride=8,padding=0] (sequential linear[width={width}] leaky_relu) "
            "col2im)")


# ------------------------------------------------------------------------------------------- overlapping trials


def test_trials_of_different_lengths_overlap_with_no_round_barrier(tmp_path: Path) -> None:
    """Seeds are trained first, in order: a 151k-parameter convolution network, then three tiny MLPs. With 2 slots
    and batch 2, the third trial must start before the first (long) one ends."""
    import ray

    started_ray = not ray.is_initialized()
    seeds = (EINSPACE_DIGITS_SEEDS[3], _mlp(16), _mlp(32), _mlp(64))
    config = SearchConfig(strategy="random", seeds=seeds, budget=4, batch=2, scorers=(), seed=0,
                          train={"epochs": 4}, tune={"num_cpus": 2, "scheduler": "fifo"})
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    try:
        summary = run_search(config, name="overlap", db=db)
    finally:
        if started_ray:
            ray.shutdown()
    assert summary.status == "finished" and summary.finished == 4
    with Store(db) as store:
        trials = store.trials_of("overlap")
        params = [store.get_architecture(t.arch_hash).params for t in trials]
        assert store.get_lease("overlap") is None  # released at the end
    assert [t.status for t in trials] == ["ok"] * 4
    spans = [(t.resources["started_at"], t.resources["ended_at"]) for t in trials]
    assert all(start < end for start, end in spans)
    assert all(t.node for t in trials)  # the node each trial ran on is recorded
    assert params[0] > 100_000 and max(params[1:]) < 10_000  # the seeds, in order: the long one first
    long_end = spans[0][1]
    third_start = spans[2][0]
    assert third_start < long_end, f"trial 3 waited for trial 1 to end (a barrier): {spans}"
    assert min(end for _, end in spans[1:2]) <= third_start  # it took the slot the short trial freed
    assert [t.tell_seq for t in trials] != [None] * 4
    # told in the order they ended: the long first trial is told after the short second one
    assert trials[1].tell_seq < trials[0].tell_seq


# ------------------------------------------------------------------------------------------- leases


@pytest.fixture(scope="module")
def macro_table() -> Path:
    if not MACRO.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {MACRO}")
    return MACRO


def _table_config(table: Path, budget: int) -> SearchConfig:
    return SearchConfig(space="nb-macro", evaluator=f"table:{table}", budget=budget, batch=5, seed=1)


def _age_lease(db: str, name: str, *, host: str, seconds: float) -> None:
    """Make the search's lease look held by a driver on ``host`` whose last heartbeat was ``seconds`` ago."""
    engine = sa.create_engine(db)
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(seconds=seconds)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE nas_leases SET host = :host, heartbeat = :old, pid = 1 WHERE search_id = "
                                   "(SELECT id FROM nas_searches WHERE name = :name)"),
                           {"host": host, "old": old, "name": name})
    engine.dispose()


def _hold(store: Store, name: str, owner: str = "someone-else") -> None:
    """Take the search's lease as a live driver of this very process would."""
    import psutil

    store.acquire_lease(name, owner=owner, stale_after_s=STALE_AFTER_S, host=socket.gethostname(), pid=os.getpid(),
                        pid_started=psutil.Process().create_time())


def test_second_driver_is_refused_while_the_first_lives(tmp_path: Path, macro_table: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(_table_config(macro_table, 10), name="m", db=db)
    with Store(db) as store:
        assert store.get_lease("m") is None
        _hold(store, "m")  # a live driver (this process) holds it
    with pytest.raises(LeaseError, match=r"search 'm' is being driven by another process \(pid \d+ on "):
        resume_search("m", db=db, budget=20)
    result = subprocess.run([sys.executable, "-m", "nas.cli.app", "search", "resume", "m", "--db", db,
                             "--budget", "20"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("error: search 'm' is being driven by another process"), result.stderr
    with Store(db) as store:  # nothing was changed by the refused drivers
        assert len(store.trials_of("m")) == 10 and store.get_search("m").budget == 10
        assert store.get_lease("m").owner == "someone-else"


def test_stale_lease_is_taken_over(tmp_path: Path, macro_table: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(_table_config(macro_table, 10), name="m", db=db)
    with Store(db) as store:
        _hold(store, "m")
    _age_lease(db, "m", host="another-host", seconds=STALE_AFTER_S / 2)  # elsewhere, recent: alive
    with pytest.raises(LeaseError, match="another-host"):
        resume_search("m", db=db, budget=15)
    _age_lease(db, "m", host="another-host", seconds=STALE_AFTER_S + 5)  # elsewhere, silent too long: dead
    summary = resume_search("m", db=db, budget=15)
    assert summary.status == "finished" and summary.finished == 15
    with Store(db) as store:
        record = store.get_search("m")
        assert record.budget == 15 and record.error == ""
        assert store.get_lease("m") is None


def test_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path, macro_table: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(_table_config(macro_table, 5), name="m", db=db)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Store(db) as store:
        store.acquire_lease("m", owner="dead-driver", stale_after_s=STALE_AFTER_S, host=socket.gethostname(),
                            pid=dead.pid, pid_started=1.0)
    summary = resume_search("m", db=db, budget=10)  # heartbeat fresh, but the holder is gone
    assert summary.finished == 10


def test_failed_search_keeps_its_error_in_our_table(tmp_path: Path, macro_table: Path) -> None:
    import json

    table = tmp_path / "partial.json"
    data = json.loads(macro_table.read_text())
    table.write_text(json.dumps(dict(list(data.items())[:30])))  # most candidates are missing: the search fails
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    with pytest.raises(Exception, match="is not in the table"):
        run_search(SearchConfig(space="nb-macro", evaluator=f"table:{table}", budget=20, seed=1), name="p", db=db)
    with Store(db) as store:
        record = store.get_search("p")
        assert record.status == "failed" and "is not in the table" in record.error
        assert store.get_lease("p") is None
