"""A search killed with SIGKILL at three moments and resumed with ``nas search resume`` each time loses no finished
trial and retrains none, and every batch it planned, before and after each kill, is exactly what a fresh strategy
replaying the told history (in the recorded tell order) plans (real subprocesses, real local Ray, real SQLite; no
mocks).

Each driver (``nas search run``, then ``nas search resume``) runs in its own session (process group). While the
first one lives, a second ``resume`` is refused (one driver per search). Each is killed with SIGKILL, with every
process it started, once the store (read-only) shows the moment: (1) a trial running and none finished, (2) at
least 3 finished, (3) at least 6 finished, so the driver dies wherever it is (possibly between two commits of a
trial). The last ``nas search resume`` must then finish the budget exactly.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import psutil
import yaml

from nas.store import Store

NAME = "killed"
BUDGET = 8
# ranked by the shipped predictor (on the driver: no proxy tasks to start; tests/nas/search/test_driver.py covers
# the proxies);
# batch 2 so that the search plans several batches and evolution breeds (population 2) before the later kills
CONFIG = {"space": "einspace", "dataset": "digits", "strategy": "evolution", "seeds": [],
          "budget": BUDGET, "batch": 2, "oversample": 2, "scorers": ["predictor"], "seed": 3,
          "train": {"epochs": 3}, "tune": {"num_cpus": 2, "grace_period": 1, "reduction_factor": 2}}
KILL_AT = ("running", 3, 6)  # a trial running and none finished; then at least 3 and 6 trials finished


def _nas(*args: str) -> list[str]:
    return [sys.executable, "-c", "from nas.cli.app import main; main()", *args]


def _finished(db_file: Path) -> list[tuple[int, str, str, float | None, int | None]]:
    """(id, hash, status, val_acc, optuna number) of the finished trials, read-only (the driver may be writing)."""
    return _query(db_file, "SELECT id, arch_hash, status, val_acc, optuna_trial_number FROM nas_trials "
                           "WHERE status IN ('ok', 'stopped', 'failed') ORDER BY id")


def _running(db_file: Path) -> int:
    return len(_query(db_file, "SELECT id FROM nas_trials WHERE status = 'running'"))


def _query(db_file: Path, sql: str) -> list:
    if not db_file.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:  # tables not created yet
        return []


def _kill_tree(process: subprocess.Popen) -> list[psutil.Process]:
    """SIGKILL the run's process group and every process it started (Ray's daemons and workers), by pid.

    The processes are first suspended, parents before children, until no new one appears (so nothing is spawned
    between listing and killing). Returns the processes still alive afterwards (none, hopefully).
    """
    family: dict[int, psutil.Process] = {}
    try:
        family[process.pid] = psutil.Process(process.pid)
    except psutil.NoSuchProcess:
        pass
    for _ in range(5):
        grown = False
        for proc in list(family.values()):
            try:
                proc.suspend()
                for child in proc.children(recursive=True):
                    if child.pid not in family:
                        family[child.pid] = child
                        grown = True
            except psutil.NoSuchProcess:
                continue
        if not grown:
            break
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for proc in family.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait(timeout=30)
    _, alive = psutil.wait_procs(list(family.values()), timeout=30)
    return alive


def _reached(db_file: Path, moment: str | int) -> bool:
    finished = len(_finished(db_file))
    if moment == "running":
        return finished == 0 and _running(db_file) > 0
    return finished >= int(moment)


def _drive_until_killed(args: list[str], db_file: Path, moment: str | int, log: Path, env: dict, cwd: Path,
                        *, check_refusal: bool = False) -> list:
    """Start a driver, wait for ``moment``, SIGKILL it and everything it started; the trials finished then."""
    with open(log, "ab") as out:
        driver = subprocess.Popen(_nas(*args), stdout=out, stderr=out, env=env, cwd=cwd, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None and not _reached(db_file, moment):
            time.sleep(0.05)
        assert driver.poll() is None, f"the driver ended before moment {moment!r}: {log.read_text()[-3000:]}"
        assert _reached(db_file, moment), f"moment {moment!r} never came: {log.read_text()[-3000:]}"
        if check_refusal:  # one driver per search: a second one is refused while this one lives
            second = subprocess.run(_nas("search", "resume", NAME, "--db", f"sqlite:///{db_file}"),
                                    capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
            assert second.returncode == 2, second.stdout + second.stderr
            assert f"error: search '{NAME}' is being driven by another process" in second.stderr, second.stderr
            assert driver.poll() is None
    finally:
        alive = _kill_tree(driver)
    assert not alive, f"processes survived SIGKILL: {alive}"
    return _finished(db_file)


def test_sigkill_at_three_moments_then_resume_loses_nothing_retrains_nothing_and_replays_exactly(
        tmp_path: Path) -> None:
    db_file = tmp_path / "search.db"
    db = f"sqlite:///{db_file}"
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    log = tmp_path / "drivers.log"
    commands = [["search", "run", "--name", NAME, "--db", db, "--config", str(config)]] + \
        [["search", "resume", NAME, "--db", db]] * (len(KILL_AT) - 1)
    snapshots = []
    for i, (args, moment) in enumerate(zip(commands, KILL_AT)):
        before = _drive_until_killed(args, db_file, moment, log, env, tmp_path, check_refusal=i == 0)
        assert len(before) < BUDGET, f"the search finished before kill {i + 1}"
        snapshots.append(before)

    resumed = subprocess.run(_nas("search", "resume", NAME, "--db", db), capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"search '{NAME}' finished: {BUDGET}/{BUDGET} trials" in resumed.stdout

    with Store(db) as store:
        assert store.get_search(NAME).status == "finished" and store.get_lease(NAME) is None
        trials = store.trials_of(NAME)
        finished = [t for t in trials if t.status in ("ok", "stopped", "failed")]
        assert len(finished) == BUDGET and len(trials) == BUDGET  # nothing left queued or running
        by_id = {t.id: t for t in trials}
        for before in snapshots:  # every trial finished before a kill: unchanged since
            for trial_id, arch_hash, status, val_acc, number in before:
                t = by_id[trial_id]
                assert (t.arch_hash, t.status, t.val_acc, t.optuna_trial_number) == (arch_hash, status, val_acc,
                                                                                      number)
        hashes = [t.arch_hash for t in finished]
        assert len(set(hashes)) == len(hashes), "a hash was trained twice"
        numbers = {t.optuna_trial_number for t in finished}
        assert sorted(t.tell_seq for t in trials) == list(range(BUDGET))  # every result told once
        _check_batches_replay_exactly(store, trials)

    study = optuna.load_study(study_name=NAME, storage=db)
    optuna_trials = study.get_trials(deepcopy=False)
    assert len(optuna_trials) == BUDGET  # no duplicate Optuna trial either
    assert {t.number for t in optuna_trials} == numbers
    assert sorted(t.user_attrs["nas_trial_id"] for t in optuna_trials) == sorted(by_id)
    assert len({t.user_attrs["hash"] for t in optuna_trials}) == BUDGET
    assert all("score_predictor" in t.user_attrs for t in optuna_trials)  # ranked by the predictor


def _check_batches_replay_exactly(store: Store, trials: list) -> None:
    """Every batch the drivers planned (live ones and resumed ones) equals the batch that a fresh strategy plans
    after replaying the first ``told`` results in tell order, with the same candidates in flight and known."""
    from nas.candidate import build_candidate
    from nas.data import load_dataset
    from nas.search.asynchronous import PendingStrategy
    from nas.search.config import SearchConfig
    from nas.search.driver import decode_proposal
    from nas.search.scoring import scorer_from_config
    from nas.search.selection import plan_round
    from nas.search.strategies import Observation, make_strategy
    from search_spaces.spaces import get_space

    config = SearchConfig.from_dict(store.get_search(NAME).config)
    dataset = load_dataset(config.dataset, seed=config.seed)
    space = get_space(config.space, tuple(dataset.input_shape), limits=config.limits)
    scorer = scorer_from_config(config, space, dataset)
    scorer.use_ray = False
    lineage = {rec.child_hash: rec.operator for rec in store.lineage_of(NAME)}
    proposals = {t.id: decode_proposal(lineage[t.arch_hash], "") for t in trials}
    asks = {t.id: json.loads(lineage[t.arch_hash])["ask"] for t in trials}
    told = store.told_trials(NAME)

    def observation(t: Any) -> Observation:
        fitness = t.val_acc if t.status in ("ok", "stopped") else None
        return Observation(proposals[t.id].derivation, fitness, proposals[t.id], t.arch_hash)

    def build(proposal: Any) -> Any:
        return build_candidate(space, space.parse(proposal.derivation), dataset.num_classes, check=False)

    drivers = set()
    previous = None
    for generation in sorted({t.generation for t in trials}):
        batch = [t for t in trials if t.generation == generation]
        k, need = asks[batch[0].id]["told"], asks[batch[0].id]["need"]
        assert all(asks[t.id]["told"] == k for t in batch)  # a batch is planned from one state
        drivers.add(asks[batch[0].id]["driver"])
        told_ids = {t.id for t in told[:k]}
        earlier = [t for t in trials if t.id < batch[0].id]
        pending = {proposals[t.id].derivation for t in earlier if t.id not in told_ids}
        driver = asks[batch[0].id]["driver"]
        if previous is not None and previous[:2] == (driver, k):
            strategy = previous[2]  # no tell since the last batch: that batch's asks still count (pending, index)
        else:
            strategy = make_strategy(config.strategy, space, seed=config.seed,
                                     seeds=config.seed_list(tuple(dataset.input_shape)), **config.strategy_kwargs())
            strategy.replay([observation(t) for t in told[:k]])
        previous = (driver, k, strategy)
        assert min(asks[t.id]["index"] for t in batch) >= strategy._asks_since_tell
        _, chosen = plan_round(PendingStrategy(strategy, lambda pending=pending: set(pending)), scorer, build,
                               {t.arch_hash for t in earlier}, need, config.oversample)
        assert [p.proposal.derivation for p in chosen] == [proposals[t.id].derivation for t in batch], \
            f"batch {generation} (told {k}) differs from the replayed strategy's"
    assert len(drivers) >= 2  # batches of the first driver and of resumed ones were checked
