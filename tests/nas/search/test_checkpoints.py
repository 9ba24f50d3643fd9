"""Trial checkpoints: the trainer resumes from a saved training state exactly, and a Ray Tune trial whose worker
process is killed (SIGKILL, mid-trial) is retried from its last checkpoint and ends with one outcome whose epochs
are each reported once. Real local Ray, real worker processes, no mocks."""

from __future__ import annotations

import copy
import os
import signal
from typing import Any

import pytest
import torch

from nas.candidate import build_candidate
from nas.data import load_dataset
from nas.search.trainable import TrialSpec
from nas.search.tune_runner import TuneSettings, run_trials
from nas.train import STATE_KEYS, TrainConfig, train_candidate
from search_spaces.spaces import get_space

SHAPE = (1, 8, 8)
ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
EPOCHS = 5


def _candidate() -> Any:
    space = get_space("nb201", SHAPE)
    derivation = space.from_arch(ARCH)
    torch.manual_seed(0)
    return space, derivation, build_candidate(space, derivation, 10, check=False)


def test_a_resumed_run_continues_exactly_where_the_checkpoint_was_taken() -> None:
    dataset = load_dataset("digits", seed=0)
    config = TrainConfig(epochs=4, threads=1, max_batches_per_epoch=5)
    _, _, whole = _candidate()
    _, _, first = _candidate()
    states: list[dict[str, Any]] = []
    uninterrupted = train_candidate(whole.module, dataset, config)
    train_candidate(first.module, dataset, config, checkpoint=lambda s: states.append(copy.deepcopy(s)))
    assert [s["epoch"] for s in states] == [1, 2, 3, 4]
    assert set(states[1]) == set(STATE_KEYS)
    _, _, fresh = _candidate()
    seen: list[int] = []
    resumed = train_candidate(fresh.module, dataset, config, resume=states[1], callback=lambda m: seen.append(m.epoch))
    assert seen == [3, 4]  # only the epochs after the checkpoint are trained
    assert [m.epoch for m in resumed.epochs] == [1, 2, 3, 4]
    assert [m.to_dict() | {"seconds": 0} for m in resumed.epochs] == \
        [m.to_dict() | {"seconds": 0} for m in uninterrupted.epochs]
    with pytest.raises(ValueError, match="lacks module"):
        train_candidate(fresh.module, dataset, config, resume={k: v for k, v in states[0].items() if k != "module"})


def test_a_killed_worker_is_retried_from_its_last_checkpoint(tmp_path: Any) -> None:
    space, derivation, candidate = _candidate()
    protocol = TrainConfig(epochs=EPOCHS, threads=1, max_batches_per_epoch=40).to_dict()
    spec = TrialSpec(1, candidate.hash, "nb201", SHAPE, 10, str(derivation), "digits", 0, protocol)
    settings = TuneSettings(num_cpus=1, scheduler="fifo", max_failures=1, reuse_actors=False,
                            storage_path=str(tmp_path / "tune"))
    killed: list[tuple[int, int]] = []

    def kill_after_first_epoch(trial_id: int, metrics: dict[str, Any]) -> None:
        if not killed:
            os.kill(int(metrics["pid"]), signal.SIGKILL)  # the worker process training the trial, mid-trial
            killed.append((int(metrics["epoch"]), int(metrics["pid"])))

    [outcome] = run_trials([spec], settings, on_epoch=kill_after_first_epoch)
    epoch_at_kill, dead_pid = killed[0]
    assert outcome.status == "ok", outcome.error
    assert outcome.resources["retries"] == 1
    epochs = [int(e["epoch"]) for e in outcome.epochs]
    assert epochs == list(range(1, EPOCHS + 1))  # each epoch once: the retry did not start again from epoch 1
    pids = [int(e["pid"]) for e in outcome.epochs]
    assert pids[0] == dead_pid and pids[-1] != dead_pid
    retried = [e for e, p in zip(epochs, pids) if p != dead_pid]
    # the retry's first epoch follows the last checkpoint the dead worker saved (at or after the kill's epoch)
    assert retried[0] > epoch_at_kill and retried == list(range(retried[0], EPOCHS + 1))


def test_a_search_whose_trial_worker_dies_keeps_one_trial_resumed_from_its_checkpoint(tmp_path: Any) -> None:
    """The whole search: trial 0's worker SIGKILLs itself after its first epoch's checkpoint (fault ``kill``);
    Tune retries it from there; the store holds exactly one row (and one Optuna trial) per trial, epochs once."""
    import subprocess
    import sys

    import optuna
    import yaml

    from nas.store import Store

    config = {"space": "einspace", "dataset": "digits", "strategy": "random", "seeds": [], "budget": 3, "batch": 3,
              "scorers": [], "seed": 2, "faults": {0: "kill"}, "train": {"epochs": 3, "max_batches_per_epoch": 10},
              "tune": {"num_cpus": 2, "scheduler": "fifo"}}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(config))
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    done = subprocess.run([sys.executable, "-m", "nas.cli.app", "search", "run", "--name", "k", "--db", db,
                           "--config", str(tmp_path / "search.yaml")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with Store(db) as store:
        trials = store.trials_of("k")
        assert len(trials) == 3 and all(t.status == "ok" for t in trials)
        killed = trials[0]
        assert [e["epoch"] for e in killed.epochs] == [1, 2, 3]
        assert killed.resources["retries"] == 1 and len({e["pid"] for e in killed.epochs}) == 2
        assert all(t.resources["retries"] == 0 for t in trials[1:])
        study = optuna.load_study(study_name="k", storage=store.optuna_storage)
        assert sorted(t.user_attrs["nas_trial_id"] for t in study.trials) == [t.id for t in trials]
