"""The search's SQL store (nas.store): real SQLite files, Optuna's view of them, optuna-dashboard over HTTP, and
PostgreSQL when ``NAS_TEST_POSTGRES_URL`` names one (``.ci/start_postgres.sh`` starts a throwaway server).

The tests taking the ``db`` fixture run against both databases: a SQLite file and a fresh database of a throwaway
PostgreSQL server the session starts (``tests/_postgres.py``; skipped where none can start)."""

from __future__ import annotations

import math
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy

from nas.store import Store, StoreError, default_db_url
from nas.store.store import _Result
from tests._dashboard import get_json, running_dashboard

NAME = "s1"
OBJECTIVES = ["val_acc", "params"]
DIRECTIONS = ["maximize", "minimize"]
ARCHS = {  # hash -> (params, flops, onnx bytes)
    "aa11": (1000, 20_000, b"\x08\x07onnx-aa11" + bytes(range(256))),
    "bb22": (500, 9_000_000_000, b"\x08\x07onnx-bb22\x00\xff"),
    "cc33": (2000, 40_000, b"\x08\x07onnx-cc33"),
    "dd44": (300, 1_000, b"\x08\x07onnx-dd44"),
}


def _epochs(accs: list[float]) -> list[dict[str, Any]]:
    return [{"epoch": i, "train_loss": 1.0 / i, "val_acc": a, "test_acc": a - 0.01, "lr": 0.1}
            for i, a in enumerate(accs, start=1)]


def _populate(store: Store, name: str = NAME) -> dict[str, int]:
    """A search with 4 architectures, scores, lineage and trials ok (3 epochs), stopped, failed, ok."""
    store.create_search(name, space="einspace", dataset="digits", config={"epochs": 3, "bad": math.nan}, seed=7,
                        objectives=OBJECTIVES, directions=DIRECTIONS)
    for h, (params, flops, onnx) in ARCHS.items():
        store.add_architecture(h, space="einspace", derivation=f"(sequential {h})", arch=None if h != "aa11" else "A",
                               onnx=onnx, params=params, flops=flops)
        store.add_scores(name, h, {"synflow": (float(params), 0.5), "nwot": (-math.inf if h == "cc33" else 1.0, 0.25),
                                   "grasp": (math.nan, math.nan)})
    store.add_lineage(name, "aa11", [], "sample")
    store.add_lineage(name, "bb22", ["aa11"], "mutate")
    store.add_lineage(name, "dd44", ["aa11", "bb22"], "crossover")

    ids = {}
    ids["ok"] = store.start_trial(name, "aa11", generation=0, resources={"cpu": 1, "gpu": 0})
    e = _epochs([0.5, 0.7, 0.8])
    store.finish_trial(ids["ok"], status="ok", epochs=e, final=e[-1], objective_values=[0.8, 1000])
    ids["stopped"] = store.start_trial(name, "bb22", generation=0, resources={"cpu": 1})
    store.finish_trial(ids["stopped"], status="stopped", epochs=_epochs([0.4, 0.6]), final=None,
                       objective_values=[0.6, 500])
    ids["failed"] = store.start_trial(name, "cc33", generation=1, resources={"cpu": 1})
    store.finish_trial(ids["failed"], status="failed", error="NaN loss at epoch 2 step 5", epochs=_epochs([0.3]),
                       final=None, objective_values=None)
    ids["ok2"] = store.queue_trial(name, "dd44", generation=1)
    store.mark_running(ids["ok2"], resources={"cpu": 2})
    e = _epochs([0.55, 0.65])
    store.finish_trial(ids["ok2"], status="ok", epochs=e, final=e[-1], objective_values=[0.65, 300])
    return ids


def _check_populated(store: Store, url: str, ids: dict[str, int], name: str = NAME) -> None:
    """Everything :func:`_populate` wrote, through the store's API and through Optuna."""
    search = store.get_search(name)
    assert (search.space, search.dataset, search.seed, search.status) == ("einspace", "digits", 7, "running")
    assert search.objectives == tuple(OBJECTIVES) and search.directions == tuple(DIRECTIONS)
    assert search.config["epochs"] == 3 and math.isnan(search.config["bad"])

    arch = store.get_architecture("bb22")
    assert (arch.params, arch.flops, arch.arch, arch.onnx) == (500, 9_000_000_000, None, None)
    assert store.get_architecture("aa11", with_onnx=True).onnx == ARCHS["aa11"][2]

    scores = {(s.arch_hash, s.name): s for s in store.scores_of(name)}
    assert len(scores) == 12
    assert scores["cc33", "nwot"].value == -math.inf and math.isnan(scores["aa11", "grasp"].value)
    assert scores["aa11", "grasp"].seconds is None and scores["aa11", "synflow"] .value == 1000.0
    assert [s.name for s in store.scores_of(name, "bb22")] == ["synflow", "nwot", "grasp"]

    lineage = store.lineage_of(name)
    assert [(r.child_hash, r.parents, r.operator) for r in lineage] == [
        ("aa11", (), "sample"), ("bb22", ("aa11",), "mutate"), ("dd44", ("aa11", "bb22"), "crossover")]

    trials = store.trials_of(name)
    assert [t.id for t in trials] == sorted(ids.values())
    by_id = {t.id: t for t in trials}
    ok, stopped, failed, ok2 = (by_id[ids[k]] for k in ("ok", "stopped", "failed", "ok2"))
    assert (ok.status, ok.val_acc, ok.test_acc, ok.objective_values) == ("ok", 0.8, 0.8 - 0.01, (0.8, 1000.0))
    assert [e["val_acc"] for e in ok.epochs] == [0.5, 0.7, 0.8] and ok.final == ok.epochs[-1]
    assert ok.resources == {"cpu": 1, "gpu": 0} and ok.finished is not None and ok.finished >= ok.created
    assert (stopped.status, stopped.val_acc, stopped.final) == ("stopped", 0.6, None)
    assert (failed.status, failed.error, failed.val_acc, failed.generation) == (
        "failed", "NaN loss at epoch 2 step 5", 0.3, 1)
    assert ok2.resources == {"cpu": 2}
    assert [t.id for t in store.trials_of(name, status="ok")] == [ids["ok"], ids["ok2"]]
    assert [t.id for t in store.trials_of(name, status=("stopped", "failed"))] == [ids["stopped"], ids["failed"]]
    assert store.unfinished_trials(name) == []

    assert [t.id for t in store.best(name)] == [ids["ok"], ids["ok2"], ids["stopped"]]
    assert [t.id for t in store.best(name, k=1)] == [ids["ok"]]
    # (0.8, 1000) and (0.65, 300) do not dominate each other; stopped/failed trials are not candidates
    assert [t.id for t in store.pareto_front(name)] == [ids["ok"], ids["ok2"]]
    assert store.curve(name) == [0.8, 0.8, 0.8]
    assert store.known_hashes(name) == {"aa11": "ok", "bb22": "stopped", "cc33": "failed", "dd44": "ok"}

    # Optuna's view, through a storage of its own
    study = optuna.load_study(study_name=name, storage=url)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == OBJECTIVES
    assert study.user_attrs["config"]["epochs"] == 3 and study.user_attrs["space"] == "einspace"
    otrials = {t.user_attrs["nas_trial_id"]: t for t in study.get_trials()}
    assert sorted(otrials) == sorted(ids.values()) and len(study.trials) == 4
    t = otrials[ids["ok"]]
    assert t.state == optuna.trial.TrialState.COMPLETE and t.values == [0.8, 1000.0]
    assert t.intermediate_values == {1: 0.5, 2: 0.7, 3: 0.8}
    assert (t.user_attrs["hash"], t.user_attrs["test_acc"], t.user_attrs["params"]) == ("aa11", 0.8 - 0.01, 1000)
    assert (t.user_attrs["flops"], t.user_attrs["derivation"], t.user_attrs["arch"]) == (
        20_000, "(sequential aa11)", "A")
    assert t.user_attrs["score_synflow"] == 1000.0 and math.isnan(t.user_attrs["score_grasp"])
    assert t.user_attrs["generation"] == 0 and "error" not in t.user_attrs
    assert by_id[ids["ok"]].optuna_trial_number == t.number
    t = otrials[ids["stopped"]]
    assert t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values == {1: 0.4, 2: 0.6}
    assert t.user_attrs["hash"] == "bb22"
    t = otrials[ids["failed"]]
    assert t.state == optuna.trial.TrialState.FAIL and t.values is None
    assert t.user_attrs["error"] == "NaN loss at epoch 2 step 5" and t.user_attrs["score_nwot"] == -math.inf
    assert {t.number for t in study.best_trials} == {by_id[ids["ok"]].optuna_trial_number,
                                                     by_id[ids["ok2"]].optuna_trial_number}

    # every trial's ONNX artifact, named <hash>.onnx, holds the architecture's bytes
    artifacts = optuna.artifacts.FileSystemArtifactStore(store.artifact_dir)
    for trial in study.get_trials():
        metas = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
        assert [m.filename for m in metas] == [f"{trial.user_attrs['hash']}.onnx"]
        with artifacts.open_reader(metas[0].artifact_id) as f:
            assert f.read() == ARCHS[trial.user_attrs["hash"]][2]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nas.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new store's URL: a SQLite file, or a fresh PostgreSQL database (its artifacts go to ``./nas_artifacts``:
    the test runs in ``tmp_path``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nas.db'}"
    server = request.getfixturevalue("postgres_server")
    monkeypatch.chdir(tmp_path)
    return server.new_database()


def test_round_trip_sqlite(sqlite_db: str, tmp_path: Path) -> None:
    db = sqlite_db
    with Store(db) as store:
        assert store.artifact_dir == tmp_path / "nas_artifacts" and store.artifact_dir.is_dir()
        ids = _populate(store)
        _check_populated(store, db, ids)
        assert [s.name for s in store.list_searches()] == [NAME]
        assert store.set_search_status(NAME, "finished").status == "finished"
        assert optuna.load_study(study_name=NAME, storage=db).user_attrs["status"] == "finished"
        with pytest.raises(ValueError, match="search status"):
            store.set_search_status(NAME, "done")
        path = tmp_path / "downloaded.onnx"
        optuna.artifacts.download_artifact(
            artifact_store=store.artifact_store, file_path=str(path),
            artifact_id=optuna.artifacts.get_all_artifact_meta(
                optuna.load_study(study_name=NAME, storage=db).trials[0], storage=store.optuna_storage)[0].artifact_id)
        assert path.read_bytes() == ARCHS["aa11"][2]
        assert store.dashboard_command() == ["optuna-dashboard", db, "--artifact-dir", str(store.artifact_dir)]

    # the journal is WAL and foreign keys are enforced
    import sqlite3
    con = sqlite3.connect(tmp_path / "nas.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"nas_meta", "nas_searches", "nas_architectures", "nas_scores", "nas_trials", "nas_lineage",
            "studies", "trials", "alembic_version"} <= tables
    con.close()


def test_reopen_keeps_everything(db: str) -> None:
    with Store(db) as store:
        ids = _populate(store)
    with Store(db) as store:
        _check_populated(store, db, ids)
        # idempotent writes keep what is stored
        store.add_architecture("aa11", space="other", derivation="x", arch=None, onnx=b"new", params=1, flops=1)
        assert store.get_architecture("aa11", with_onnx=True).onnx == ARCHS["aa11"][2]
        assert store.add_scores(NAME, "aa11", {"synflow": (1.0, 1.0), "zen": (2.0, 0.1)}) == 1
        assert [s.value for s in store.scores_of(NAME, "aa11") if s.name == "synflow"] == [1000.0]
        assert store.add_lineage(NAME, "bb22", ["dd44"], "crossover").parents == ("aa11",)
        assert store.reconcile(NAME).completed == ()
        assert len(optuna.load_study(study_name=NAME, storage=db).trials) == 4


def test_names(db: str) -> None:
    with Store(db) as store:
        store.create_search("alpha", space="nb201", dataset="digits", config={}, seed=0, objectives=["val_acc"],
                            directions=["maximize"])
        store.create_search("beta", space="nb201", dataset="digits", config={}, seed=0, objectives=["val_acc"],
                            directions=["maximize"])
        with pytest.raises(StoreError, match="a search named 'alpha' already exists"):
            store.create_search("alpha", space="x", dataset="y", config={}, seed=1, objectives=["val_acc"],
                                directions=["maximize"])
        with pytest.raises(StoreError,
                           match=r"no search named 'gamma' in (sqlite|postgresql\+psycopg)://.*; known: alpha, beta"):
            store.get_search("gamma")
        with pytest.raises(StoreError, match="known: alpha, beta"):
            store.trials_of("gamma")
        optuna.create_study(study_name="foreign", storage=store.optuna_storage)
        with pytest.raises(StoreError, match="an Optuna study named 'foreign'"):
            store.create_search("foreign", space="x", dataset="y", config={}, seed=1, objectives=["val_acc"],
                                directions=["maximize"])
        with pytest.raises(ValueError, match="one direction per objective"):
            store.create_search("g", space="x", dataset="y", config={}, seed=1, objectives=["a", "b"],
                                directions=["maximize"])
        with pytest.raises(StoreError, match="no architecture with hash 'zz'"):
            store.start_trial("alpha", "zz", generation=0, resources={})
        with pytest.raises(StoreError, match="no architecture with hash 'zz'"):
            store.get_architecture("zz")
        assert [s.name for s in store.list_searches()] == ["alpha", "beta"]
        assert store.get_search("alpha").status == "running"


def test_finish_trial_validates_before_writing(db: str) -> None:
    with Store(db) as store:
        store.create_search(NAME, space="e", dataset="d", config={}, seed=0, objectives=OBJECTIVES,
                            directions=DIRECTIONS)
        store.add_architecture("aa11", space="e", derivation="d", arch=None, onnx=b"x", params=1, flops=1)
        tid = store.start_trial(NAME, "aa11", generation=0, resources={})
        with pytest.raises(ValueError, match="needs objective_values"):
            store.finish_trial(tid, status="ok", epochs=[], final=None, objective_values=None)
        with pytest.raises(ValueError, match="must not be NaN"):
            store.finish_trial(tid, status="ok", epochs=[], final=None, objective_values=[math.nan, 1])
        with pytest.raises(ValueError, match="has 2 objectives"):
            store.finish_trial(tid, status="ok", epochs=[], final=None, objective_values=[0.5])
        with pytest.raises(ValueError, match="status"):
            store.finish_trial(tid, status="done", epochs=[], final=None, objective_values=None)
        assert store.get_trial(tid).status == "running"
        assert len(optuna.load_study(study_name=NAME, storage=db).trials) == 0
        store.finish_trial(tid, status="failed", error="boom", epochs=[], final=None, objective_values=None)
        with pytest.raises(StoreError, match="already finished"):
            store.finish_trial(tid, status="failed", error="again", epochs=[], final=None, objective_values=None)
        with pytest.raises(StoreError, match="not queued"):
            store.mark_running(tid)
        assert len(optuna.load_study(study_name=NAME, storage=db).trials) == 1


class _CrashAfterOptunaTrial(Store):
    """A store whose process 'dies' right after the Optuna trial is created (before its artifact and state)."""

    def _finish_optuna(self, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("simulated crash")


def test_crash_between_optuna_and_our_row(db: str) -> None:
    with Store(db) as store:
        store.create_search(NAME, space="e", dataset="d", config={}, seed=0, objectives=OBJECTIVES,
                            directions=DIRECTIONS)
        for h, (params, flops, onnx) in ARCHS.items():
            store.add_architecture(h, space="e", derivation=h, arch=None, onnx=onnx, params=params, flops=flops)
        crashed = store.start_trial(NAME, "aa11", generation=0, resources={})
        lost = store.start_trial(NAME, "bb22", generation=0, resources={})
        queued = store.queue_trial(NAME, "cc33", generation=0)
        # the Optuna trial and its artifact are written, then the driver dies before completing our row
        e = _epochs([0.5, 0.9])
        store._write_optuna_trial(crashed, _Result("ok", "", e, e[-1], [0.9, 1000.0]))
        assert store.get_trial(crashed).status == "running"
    with _CrashAfterOptunaTrial(db) as store:
        # this one dies after creating its (running) Optuna trial, before the artifact and the final state
        half = store.start_trial(NAME, "dd44", generation=1, resources={})
        with pytest.raises(KeyboardInterrupt):
            store.finish_trial(half, status="stopped", epochs=_epochs([0.2]), final=None, objective_values=None)
    assert [t.state.name for t in optuna.load_study(study_name=NAME, storage=db).trials] == ["COMPLETE", "RUNNING"]

    with Store(db) as store:  # resume
        report = store.reconcile(NAME)
        assert report.completed == (crashed, half) and report.requeued == (lost,)
        row = store.get_trial(crashed)
        assert (row.status, row.val_acc, row.objective_values, row.optuna_trial_number) == ("ok", 0.9, (0.9, 1000.0), 0)
        assert [e["val_acc"] for e in row.epochs] == [0.5, 0.9]
        assert (store.get_trial(half).status, store.get_trial(half).optuna_trial_number) == ("stopped", 1)
        assert [t.id for t in store.unfinished_trials(NAME)] == [lost, queued]
        assert {t.status for t in store.unfinished_trials(NAME)} == {"queued"}
        assert store.reconcile(NAME) == type(report)()  # nothing left to repair

        study = optuna.load_study(study_name=NAME, storage=db)
        assert [(t.state.name, t.user_attrs["nas_trial_id"]) for t in study.trials] == [
            ("COMPLETE", crashed), ("PRUNED", half)]
        for trial in study.trials:
            metas = optuna.artifacts.get_all_artifact_meta(trial, storage=store.optuna_storage)
            assert len(metas) == 1
            with store.artifact_store.open_reader(metas[0].artifact_id) as f:
                assert f.read() == ARCHS[trial.user_attrs["hash"]][2]

        # the requeued trial runs again and finishes once
        store.mark_running(lost)
        store.finish_trial(lost, status="ok", epochs=_epochs([0.7]), final=None, objective_values=[0.7, 500])
        assert [t.id for t in store.trials_of(NAME, status="ok")] == [crashed, lost]
        assert len(optuna.load_study(study_name=NAME, storage=db).trials) == 3


def test_finish_again_after_crash_completes_from_optuna(db: str) -> None:
    with Store(db) as store:
        store.create_search(NAME, space="e", dataset="d", config={}, seed=0, objectives=["val_acc"],
                            directions=["maximize"])
        store.add_architecture("aa11", space="e", derivation="d", arch=None, onnx=b"onnx", params=1, flops=1)
        tid = store.start_trial(NAME, "aa11", generation=0, resources={})
        store._write_optuna_trial(tid, _Result("stopped", "", _epochs([0.3, 0.4]), None, None))
        # the driver retries without reconciling: the Optuna trial written first wins, no duplicate
        row = store.finish_trial(tid, status="stopped", epochs=_epochs([0.3]), final=None, objective_values=None)
        assert (row.status, row.val_acc, row.optuna_trial_number) == ("stopped", 0.4, 0)
        (trial,) = optuna.load_study(study_name=NAME, storage=db).trials
        # single objective: a pruned trial's value is its last intermediate value, as Optuna's tell() does
        assert trial.state.name == "PRUNED" and trial.value == 0.4


def test_garbage_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    garbage = b"this is not a SQLite database\n" + bytes(range(256)) * 64
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as info:
        Store(f"sqlite:///{path}")
    message = str(info.value)
    assert str(path) in message and "not a database" in message and "\n" not in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]


def test_newer_schema_is_refused(sqlite_db: str, tmp_path: Path) -> None:
    db = sqlite_db
    Store(db).close()
    import sqlite3
    with sqlite3.connect(tmp_path / "nas.db") as con:
        con.execute("UPDATE nas_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99, newer than this nas-platform's"):
        Store(db)


def test_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="bad store URL 'not a url'"):
        Store("not a url")
    with pytest.raises(StoreError, match="no database driver"):
        Store("nosuchdb://u:p@h/d")
    with pytest.raises(StoreError, match="in-memory SQLite"):
        Store("sqlite://")
    with pytest.raises(StoreError, match="does not exist"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    assert default_db_url() == "sqlite:///nas.db"


def test_unreachable_postgres_fails_fast_with_masked_password() -> None:
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        Store("postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:1/x")
    message = str(info.value)
    assert time.monotonic() - start < 20
    assert "postgresql+psycopg://nobody:***@127.0.0.1:1/x" in message and "s3cret-pw" not in message
    assert "\n" not in message


def test_default_artifact_dir_for_other_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store("sqlite:///rel.db") as store:
        assert store.artifact_dir == tmp_path / "rel_artifacts"
    with Store("sqlite:///rel.db", artifact_dir="elsewhere") as store:
        assert store.artifact_dir == tmp_path / "elsewhere" and store.artifact_dir.is_dir()


# ------------------------------------------------------------------------------------------- optuna-dashboard


@pytest.fixture
def dashboard(db: str, tmp_path: Path) -> Iterator[tuple[str, Store, dict[str, int]]]:
    store = Store(db)
    ids = _populate(store)
    try:
        with running_dashboard(db, store.artifact_dir, tmp_path / "dashboard.log") as base:
            yield base, store, ids
    finally:
        store.close()


def test_optuna_dashboard_shows_every_trained_candidate(dashboard: tuple[str, Store, dict[str, int]]) -> None:
    base, store, ids = dashboard
    studies = get_json(f"{base}/api/studies")["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == NAME]
    assert summary["directions"] == DIRECTIONS

    detail = get_json(f"{base}/api/studies/{summary['study_id']}")
    assert detail["name"] == NAME and detail["objective_names"] == OBJECTIVES
    trials = detail["trials"]
    assert len(trials) == len(ids)
    attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
    assert sorted(a["hash"] for a in attrs) == sorted(ARCHS)
    assert sorted(t["state"] for t in trials) == ["Complete", "Complete", "Fail", "Pruned"]
    ok = next(t for t, a in zip(trials, attrs, strict=True) if a["hash"] == "aa11")
    assert ok["values"] == [0.8, 1000.0]
    assert [v["value"] for v in ok["intermediate_values"]] == [0.5, 0.7, 0.8]
    assert {b["number"] for b in detail["best_trials"]} == {
        t.optuna_trial_number for t in store.trials_of(NAME, status="ok")}

    # the ONNX artifact downloads through the dashboard
    (artifact,) = ok["artifacts"]
    assert artifact["filename"] == "aa11.onnx"
    url = f"{base}/artifacts/{summary['study_id']}/{ok['trial_id']}/{artifact['artifact_id']}"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == ARCHS["aa11"][2]


# -------------------------------------------------------------------------------------------------- PostgreSQL

POSTGRES_URL = os.environ.get("NAS_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="NAS_TEST_POSTGRES_URL is not set (bash .ci/start_postgres.sh starts "
                                             "a throwaway PostgreSQL and prints its URL)")
def test_round_trip_postgres(tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    name = f"pg-{uuid.uuid4().hex[:12]}"  # the database may outlive one run
    with Store(POSTGRES_URL, artifact_dir=tmp_path / "artifacts") as store:
        ids = _populate(store, name)
        _check_populated(store, POSTGRES_URL, ids, name)
    with Store(POSTGRES_URL, artifact_dir=tmp_path / "artifacts") as store:  # reopened
        _check_populated(store, POSTGRES_URL, ids, name)
        with pytest.raises(StoreError, match="already exists"):
            store.create_search(name, space="x", dataset="y", config={}, seed=0, objectives=["val_acc"],
                                directions=["maximize"])
        if sqlalchemy.make_url(POSTGRES_URL).password:
            assert ":***@" in store.display_url and ":***@" in repr(store)


# ------------------------------------------------------------------------------------ schema 2: tell order, leases


def test_tell_order_is_recorded_and_read_back_in_that_order(db: str) -> None:
    with Store(db) as store:
        ids = _populate(store)
        assert all(t.tell_seq is None for t in store.trials_of(NAME))
        assert store.mark_told([ids["failed"], ids["ok"]]) == [0, 1]
        assert store.mark_told([ids["ok"], ids["stopped"]]) == [1, 2]  # told before: keeps its number
        assert [t.id for t in store.told_trials(NAME)] == [ids["failed"], ids["ok"], ids["stopped"], ids["ok2"]]
        queued = store.queue_trial(NAME, "aa11", generation=2)
        with pytest.raises(StoreError, match="only finished trials are told"):
            store.mark_told([queued])


def test_budget_error_and_lease_columns(db: str) -> None:
    from nas.store import LeaseError

    with Store(db) as store:
        _populate(store)
        store.set_search_budget(NAME, 12)
        store.set_search_status(NAME, "failed", error="ValueError:   boom\n  there")
        record = store.get_search(NAME)
        assert (record.budget, record.status, record.error) == (12, "failed", "ValueError: boom there")
        study = optuna.load_study(study_name=NAME, storage=store.optuna_storage)
        assert study.user_attrs["budget"] == 12 and study.user_attrs["error"] == "ValueError: boom there"
        store.acquire_lease(NAME, owner="a", stale_after_s=60, host="h1", pid=11, pid_started=1.0)
        with pytest.raises(LeaseError, match=r"pid 11 on h1"):
            store.acquire_lease(NAME, owner="b", stale_after_s=60, host="h2", pid=22, pid_started=2.0)
        assert store.heartbeat(NAME, "a") and not store.heartbeat(NAME, "b")
        taken = store.acquire_lease(NAME, owner="b", stale_after_s=60, host="h2", pid=22, pid_started=2.0,
                                    holder_alive=lambda lease: False)  # the holder is known dead
        assert taken.owner == "b" and store.get_lease(NAME).host == "h2"
        assert not store.heartbeat(NAME, "a")  # the old holder learns it lost the lease
        store.release_lease(NAME, "a")  # not its lease: nothing happens
        assert store.get_lease(NAME).owner == "b"
        store.release_lease(NAME, "b")
        assert store.get_lease(NAME) is None


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Store(url) as store:
        ids = _populate(store)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:  # what a store written by schema 1 (before migrations existed) looks like
        connection.execute(sqlalchemy.text("DROP TABLE nas_alembic_version"))
        for table, column in (("nas_searches", "budget"), ("nas_searches", "error"), ("nas_trials", "tell_seq"),
                              ("nas_searches", "job_id"), ("nas_searches", "job_address"),
                              ("nas_trials", "gpu_fallback")):
            connection.execute(sqlalchemy.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        connection.execute(sqlalchemy.text("DROP TABLE nas_leases"))
        connection.execute(sqlalchemy.text("UPDATE nas_meta SET value = '1' WHERE key = 'schema_version'"))
    engine.dispose()
    with Store(url) as store:
        _check_populated(store, url, ids)
        assert store.get_search(NAME).budget is None and store.get_search(NAME).error == ""
        assert store.mark_told([ids["ok"]]) == [0]
        assert store.get_lease(NAME) is None
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(sqlalchemy.text("SELECT value FROM nas_meta WHERE key = 'schema_version'"))
        assert version.scalar() == "3"
    engine.dispose()
