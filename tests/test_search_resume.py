"""A search killed with SIGKILL mid-run and resumed with ``nas search resume`` loses no finished trial and retrains
none (real subprocesses, real local Ray, real SQLite; no mocks).

The first ``nas search run`` runs in its own session (process group); once the store (read-only) shows at least two
finished trials and fewer than the budget, the whole group, and every process it started, is killed with SIGKILL,
so the driver dies wherever it is (possibly between two commits of a trial). ``nas search resume`` must then
finish the budget exactly.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import yaml

from nas.store import Store

NAME = "killed"
BUDGET = 6
# ranked by the shipped predictor (on the driver: no proxy tasks to start; tests/test_search.py covers the proxies)
CONFIG = {"space": "einspace", "dataset": "digits", "strategy": "evolution", "seeds": [],
          "budget": BUDGET, "batch": 3, "oversample": 2, "scorers": ["predictor"], "seed": 3,
          "train": {"epochs": 3}, "tune": {"num_cpus": 2, "grace_period": 1, "reduction_factor": 2}}


def _nas(*args: str) -> list[str]:
    return [sys.executable, "-c", "from nas.cli.app import main; main()", *args]


def _finished(db_file: Path) -> list[tuple[int, str, str, float | None, int | None]]:
    """(id, hash, status, val_acc, optuna number) of the finished trials, read-only (the driver may be writing)."""
    if not db_file.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT id, arch_hash, status, val_acc, optuna_trial_number FROM nas_trials "
                                "WHERE status IN ('ok', 'stopped', 'failed') ORDER BY id").fetchall()
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


def test_sigkill_mid_search_then_resume_loses_and_retrains_nothing(tmp_path: Path) -> None:
    db_file = tmp_path / "search.db"
    db = f"sqlite:///{db_file}"
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(_nas("search", "run", "--name", NAME, "--db", db, "--config", str(config)),
                               stdout=out, stderr=out, env=env, cwd=tmp_path, start_new_session=True)
    before: list = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            before = _finished(db_file)
            if len(before) >= 2 or run.poll() is not None:
                break
            time.sleep(0.1)
        assert run.poll() is None, f"the run ended before it could be killed: {log.read_text()[-3000:]}"
        assert 2 <= len(before) < BUDGET, f"{len(before)} trials finished: {log.read_text()[-3000:]}"
    finally:
        alive = _kill_tree(run)
    assert not alive, f"processes survived SIGKILL: {alive}"
    before = _finished(db_file)  # what was committed when it died (a trial may have finished meanwhile)
    assert len(before) < BUDGET

    resumed = subprocess.run(_nas("search", "resume", NAME, "--db", db), capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"search '{NAME}' finished: {BUDGET}/{BUDGET} trials" in resumed.stdout

    with Store(db) as store:
        assert store.get_search(NAME).status == "finished"
        trials = store.trials_of(NAME)
        finished = [t for t in trials if t.status in ("ok", "stopped", "failed")]
        assert len(finished) == BUDGET and len(trials) == BUDGET  # nothing left queued or running
        by_id = {t.id: t for t in trials}
        for trial_id, arch_hash, status, val_acc, number in before:  # every trial finished before the kill: unchanged
            t = by_id[trial_id]
            assert (t.arch_hash, t.status, t.val_acc, t.optuna_trial_number) == (arch_hash, status, val_acc, number)
        hashes = [t.arch_hash for t in finished]
        assert len(set(hashes)) == len(hashes), "a hash was trained twice"
        numbers = {t.optuna_trial_number for t in finished}

    study = optuna.load_study(study_name=NAME, storage=db)
    optuna_trials = study.get_trials(deepcopy=False)
    assert len(optuna_trials) == BUDGET  # no duplicate Optuna trial either
    assert {t.number for t in optuna_trials} == numbers
    assert sorted(t.user_attrs["nas_trial_id"] for t in optuna_trials) == sorted(by_id)
    assert len({t.user_attrs["hash"] for t in optuna_trials}) == BUDGET
    assert all("score_predictor" in t.user_attrs for t in optuna_trials)  # ranked by the predictor

