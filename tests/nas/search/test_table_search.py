"""Benchmark mode: table searches through the CLI, the store and Optuna; the table evaluator's rules and errors;
limits in table mode; the in-memory search equals the stored one."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from nas.search import SearchConfig, run_search
from nas.search.evaluators import ArchTable, EvalJob, TableError, TableEvaluator, load_table
from nas.search.simulate import CandidateCache, simulate_table_search
from nas.store import Store
from search_spaces.spaces import get_space

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
MACRO = DATA / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
NATS = DATA / "nats-sss" / "nats-sss.json"


def nas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli.app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def macro_table() -> Path:
    if not MACRO.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {MACRO}")
    return MACRO


@pytest.fixture(scope="module")
def macro_raw(macro_table: Path) -> dict:
    return json.loads(macro_table.read_text())


def test_cli_table_search_stores_50_trials_in_the_store_and_optuna(tmp_path: Path, macro_table: Path,
                                                                   macro_raw: dict) -> None:
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    result = nas("search", "run", "--name", "macro", "--db", db, "--space", "nb-macro", "--budget", "50",
                 "--evaluator", f"table:{macro_table}", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "50/50 trials" in result.stdout
    with Store(db) as store:
        record = store.get_search("macro")
        assert record.dataset == f"table:{macro_table.name}" and record.status == "finished"
        trials = store.trials_of("macro")
        assert len(trials) == 50 and all(t.status == "ok" for t in trials)
        archs = [store.get_architecture(t.arch_hash).arch for t in trials]
        assert len(set(archs)) == 50  # de-duplicated
        for trial, arch in zip(trials, archs):
            runs = [v / 100 for v in macro_raw[arch]["test_acc"]]
            assert any(math.isclose(trial.val_acc, r, rel_tol=1e-9) for r in runs)  # one run, drawn
            assert math.isclose(trial.test_acc, statistics.fmean(runs), rel_tol=1e-9)  # their mean
            assert math.isclose(trial.final["sim_cost_s"], 1e-8 * macro_raw[arch]["flops"], rel_tol=1e-9)
            assert trial.resources == {"evaluator": "table"}
        arch_row = store.get_architecture(trials[0].arch_hash, with_onnx=True)
        assert arch_row.onnx is not None and len(arch_row.onnx) < 100_000  # weightless: kilobytes
        study = optuna.load_study(study_name=record.optuna_study_name, storage=store.optuna_storage)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) == 50
        by_id = {t.user_attrs["nas_trial_id"]: t for t in done}
        for trial in trials:
            frozen = by_id[trial.id]
            assert frozen.values[0] == pytest.approx(trial.val_acc)
            assert frozen.user_attrs["test_acc"] == pytest.approx(trial.test_acc)
            assert frozen.user_attrs["sim_cost_s"] == pytest.approx(trial.final["sim_cost_s"])
    shown = nas("search", "show", "macro", "--db", db, cwd=tmp_path)
    assert shown.returncode == 0 and "macro" in shown.stdout


def test_table_with_unknown_keys_is_rejected_at_start_naming_the_first(tmp_path: Path) -> None:
    table = tmp_path / "bad.json"
    table.write_text(json.dumps({"02012100": 0.9, "0201210x": 0.8, "9": 0.7}))
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    result = nas("search", "run", "--db", db, "--space", "nb-macro", "--evaluator", f"table:{table}", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "'0201210x'" in lines[0] and "nb-macro" in lines[0]
    with Store(db) as store:
        assert store.list_searches() == []  # nothing was written


def test_candidate_missing_from_the_table_is_a_clear_error_and_keeps_what_was_stored(tmp_path: Path,
                                                                                      macro_raw: dict) -> None:
    space = get_space("nb-macro", (3, 32, 32))
    archs = sorted(macro_raw)[:40]
    table = tmp_path / "part.json"
    table.write_text(json.dumps({a: macro_raw[a] for a in archs}))
    seeds = [str(space.from_arch(a)) for a in archs[:3]]
    config = SearchConfig(space="nb-macro", evaluator=f"table:{table}", budget=20, batch=3, seeds=seeds)
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    with pytest.raises(TableError, match=r"architecture '\d{8}' is not in the table .*part\.json"):
        run_search(config, name="part", db=db)
    with Store(db) as store:
        assert store.get_search("part").status == "failed"
        ok = store.trials_of("part", status="ok")
        assert sorted(store.get_architecture(t.arch_hash).arch for t in ok) == archs[:3]  # the seeds' round


def test_table_file_rules_percent_runs_keys_and_costs(tmp_path: Path) -> None:
    table = ArchTable.from_mapping({
        "a": 93.0,                                                            # percent, one value
        "b": {"val_acc": [90.0, 92.0], "test_acc": 91.5, "seconds": 12.0},   # runs + scalar test
        "c": {"acc": 80.0, "c100": 50.0, "flops": 2_000_000},                 # NATS-SSS style
        "d": {"mean_acc": 89.0, "test_acc": [88.0, 90.0]},                    # NAS-Bench-Macro style
    })
    assert table.entry("a").runs == (0.93,) and table.entry("a").test_acc is None
    assert table.entry("b").runs == (0.90, 0.92) and table.entry("b").test_acc == pytest.approx(0.915)
    assert table.entry("d").runs == (0.88, 0.90) and table.entry("d").test_acc == pytest.approx(0.89)
    draws = {table.observe("b", seed) for seed in range(40)}
    assert draws == {0.90, 0.92} and table.observe("b", 7) == table.observe("b", 7)
    assert table.sim_cost("b", flops=10**9) == 12.0                     # the table's seconds
    assert table.sim_cost("c", flops=10**9) == pytest.approx(0.02)      # the table's FLOPs x 1e-8
    assert table.sim_cost("a", flops=10**8) == pytest.approx(1.0)       # the graph's FLOPs x 1e-8
    c100 = ArchTable.from_mapping({"c": {"acc": 80.0, "c100": 50.0}}, key="c100")
    assert c100.entry("c").runs == (0.5,)
    fractions = ArchTable.from_mapping({"a": 0.93, "b": [0.9, 0.92]})
    assert fractions.entry("a").runs == (0.93,) and fractions.entry("b").test_acc is None
    with pytest.raises(TableError, match="'x' has no 'val_acc' or 'acc' or 'mean_acc'"):
        ArchTable.from_mapping({"x": {"params": 3}})
    with pytest.raises(TableError, match="finite number"):
        ArchTable.from_mapping({"x": "high"})
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(TableError, match="is not JSON"):
        ArchTable.load(bad)
    with pytest.raises(TableError, match="cannot read table"):
        ArchTable.load(tmp_path / "missing.json")
    evaluator = TableEvaluator(table, seed=0)
    with pytest.raises(TableError, match="architecture 'zz' is not in the table"):
        evaluator.outcome(EvalJob(0, "h", "(x)", "zz", 1, 1))


def test_shared_tables_load_as_they_are(macro_table: Path) -> None:
    macro = load_table(str(macro_table), space=get_space("nb-macro", (3, 32, 32)))
    assert len(macro) == 6561 and max(e.mean for e in macro.entries.values()) == pytest.approx(0.9313, abs=1e-4)
    if NATS.is_file():
        from search_spaces.spaces import SPACES

        nats = ArchTable.load(NATS)
        assert len(nats) == 32768 and nats.entry("64:64:64:64:64").runs == (pytest.approx(0.9071, abs=1e-4),)
        if "nats-sss" in SPACES:
            nats.check_keys(get_space("nats-sss", (3, 32, 32)))


def test_limits_apply_in_table_mode(tmp_path: Path, macro_table: Path) -> None:
    space = get_space("nb-macro", (3, 32, 32))
    archs = list(space.enumerate())
    costs = sorted(space.from_arch(a).cost.flops for a in archs[::20])
    cap = costs[len(costs) // 10]
    for strategy in ("evolution", "optuna"):
        config = SearchConfig(space="nb-macro", evaluator=f"table:{macro_table}", budget=24, strategy=strategy,
                              limits={"max_flops": cap}, seed=1)
        db = f"sqlite:///{tmp_path / (strategy + '.db')}"
        run_search(config, name=strategy, db=db)
        with Store(db) as store:
            trials = store.trials_of(strategy, status="ok")
            assert len(trials) == 24
            for t in trials:
                arch = store.get_architecture(t.arch_hash).arch
                assert space.from_arch(arch).cost.flops <= cap


@pytest.mark.parametrize("strategy, scorers", [("evolution", ()), ("random", ("l2_norm",)), ("optuna", ()),
                                               ("adaptive", ())])
def test_in_memory_table_search_evaluates_what_the_stored_search_does(tmp_path: Path, macro_table: Path,
                                                                       strategy: str, scorers: tuple) -> None:
    from nas.search.scoring import Scorer

    config = SearchConfig(space="nb-macro", evaluator=f"table:{macro_table}", budget=16 if scorers else 24, batch=4,
                          seed=5, strategy=strategy, scorers=scorers, proxy_batch=2, oversample=2)
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    run_search(config, name="s", db=db)
    with Store(db) as store:
        stored = [(store.get_architecture(t.arch_hash).arch, t.val_acc) for t in store.trials_of("s")]
    space = get_space("nb-macro", (3, 32, 32))
    scorer = Scorer(list(scorers), space=space, dataset=None, proxy_batch=2, seed=5, input_shape=(3, 32, 32),
                    num_classes=10) if scorers else None
    simulated = simulate_table_search(config, space=space, scorer=scorer, cache=CandidateCache())
    assert [(t.arch, t.val_acc) for t in simulated] == stored


def test_weightless_candidates_read_like_full_ones() -> None:
    """Table candidates are built without weights: same hash and the same ONNX text (what the predictor reads)
    as the full candidate, kilobytes instead of megabytes."""
    from nas.candidate import build_candidate
    from nas.export.onnx import strip_weights
    from predictors import encode_onnx

    space = get_space("nb-macro", (3, 32, 32))
    for arch in ("02012100", "22222222"):
        full = build_candidate(space, space.from_arch(arch), 10, check=False)
        light = build_candidate(space, space.from_arch(arch), 10, check=False, weights=False)
        assert light.hash == full.hash and light.params == full.params
        stripped = encode_onnx(strip_weights(full.onnx_model))
        assert encode_onnx(light.onnx_model) == encode_onnx(full.onnx_model) == stripped
        assert len(light.onnx_model.SerializeToString()) < len(full.onnx_model.SerializeToString()) / 50
