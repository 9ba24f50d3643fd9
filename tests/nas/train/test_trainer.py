"""The one-trial trainer: learning, determinism, callbacks, early stopping, failures, config loading."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from nas.candidate import build_candidate
from nas.data import Dataset, load_dataset
from nas.train import EpochMetrics, StopTraining, TrainConfig, TrainResult, resolve_device, train_candidate
from search_spaces.spaces import get_space

CONV = "(sequential (routing im2col[kernel=3,stride=1,padding=1] linear[width=32] col2im) leaky_relu)"
QUICK = TrainConfig(epochs=2, max_batches_per_epoch=4, threads=1)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


class _Failing(nn.Module):
    """Forward works ``ok_calls`` times, then raises ``error``."""

    def __init__(self, error: BaseException, ok_calls: int = 0):
        super().__init__()
        self.net = _mlp()
        self.error, self.ok_calls, self.calls = error, ok_calls, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.ok_calls:
            raise self.error
        return self.net(x)


class _NaN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * float("nan")


def test_default_protocol() -> None:
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.optimizer, config.lr, config.weight_decay) == \
        (10, 64, "sgd", 0.05, 5e-4)
    assert (config.schedule, config.warmup_epochs, config.label_smoothing, config.grad_clip, config.seed) == \
        ("cosine", 0, 0.0, 5.0, 0)
    assert (config.device, config.amp, config.threads, config.max_batches_per_epoch) == ("auto", True, None, None)
    assert TrainConfig(optimizer="adamw").lr == 1e-3 and TrainConfig(optimizer="adamw", lr=0.01).lr == 0.01


def test_config_from_dict_and_yaml(tmp_path) -> None:
    config = TrainConfig.from_dict({"epochs": 3, "optimizer": "adamw", "lr": 0.002})
    assert config == TrainConfig(epochs=3, optimizer="adamw", lr=0.002)
    assert TrainConfig.from_dict(config.to_dict()) == config
    file = tmp_path / "train.yaml"
    file.write_text("epochs: 4\nbatch_size: 32\nschedule: constant\nmax_batches_per_epoch: 2\n")
    assert TrainConfig.from_yaml(file) == TrainConfig(epochs=4, batch_size=32, schedule="constant",
                                                      max_batches_per_epoch=2)
    with pytest.raises(ValueError, match="unknown training option 'epoch' \\(did you mean 'epochs'\\?\\)"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_mlp_learns_digits(digits: Dataset) -> None:
    result = train_candidate(_mlp(), digits, TrainConfig(epochs=3, threads=1))
    assert result.status == "ok" and result.error == ""
    assert len(result.epochs) == 3 and result.final is result.epochs[-1]
    assert result.final.val_acc > 0.85 and result.final.test_acc > 0.85
    assert result.best_val_acc == max(m.val_acc for m in result.epochs)
    assert result.params == 64 * 64 + 64 + 64 * 10 + 10
    assert result.device == "cpu" or result.device.startswith("cuda")


def test_einspace_conv_candidate_learns_digits(digits: Dataset) -> None:
    space = get_space("einspace", (1, 8, 8))
    torch.manual_seed(0)
    candidate = build_candidate(space, space.parse(CONV), 10, check=False)
    config = TrainConfig(epochs=15, batch_size=32, optimizer="adamw", lr=0.1, threads=1)
    result = train_candidate(candidate.module, digits, config)
    assert result.status == "ok", result.error
    assert result.final.val_acc > 0.85 and result.params == candidate.params


def test_runs_are_deterministic_for_a_seed(digits: Dataset) -> None:
    def metrics(seed: int) -> list[tuple[float, ...]]:
        result = train_candidate(_mlp(), digits, TrainConfig(epochs=2, max_batches_per_epoch=6, seed=seed,
                                                             threads=1))
        return [tuple(v for k, v in m.to_dict().items() if k != "seconds") for m in result.epochs]

    assert metrics(0) == metrics(0)
    assert metrics(0) != metrics(1)  # the seed drives the shuffling


def _global_state() -> tuple[int, torch.Tensor, np.ndarray, object]:
    return torch.get_num_threads(), torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _assert_same_global_state(before: tuple[int, torch.Tensor, np.ndarray, object]) -> None:
    threads, torch_rng, numpy_rng, python_rng = _global_state()
    assert threads == before[0]
    assert torch.equal(torch_rng, before[1]), "the torch RNG changed"
    assert np.array_equal(numpy_rng, before[2]), "numpy's global RNG changed"
    assert python_rng == before[3], "Python's global random changed"


def test_global_state_is_restored(digits: Dataset) -> None:
    module, failing = _mlp(), _Failing(RuntimeError("boom"), ok_calls=1)  # built first: their init draws
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    before = _global_state()
    result = train_candidate(module, digits, TrainConfig(epochs=1, max_batches_per_epoch=2, threads=2, seed=5))
    assert result.status == "ok"
    _assert_same_global_state(before)
    failed = train_candidate(failing, digits, TrainConfig(epochs=2, max_batches_per_epoch=2, threads=2, seed=5))
    assert failed.status == "failed"  # the failure path restores it too
    _assert_same_global_state(before)


def test_a_fresh_process_keeps_its_global_rngs_through_loading_and_training() -> None:
    """In a fresh process (no library imported yet: first imports draw from the global generators too), seeding
    the global RNGs, loading a dataset and training a candidate leave all three streams where they were."""
    code = textwrap.dedent("""
        import random
        import numpy as np
        import torch
        from torch import nn
        module = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # built first: its init draws
        torch.manual_seed(3); np.random.seed(3); random.seed(3)
        expected = (torch.rand(4).tolist(), np.random.rand(4).tolist(), [random.random() for _ in range(4)])
        torch.manual_seed(3); np.random.seed(3); random.seed(3)
        from nas.data import load_dataset
        from nas.train import TrainConfig, train_candidate
        result = train_candidate(module, load_dataset("digits"), TrainConfig(epochs=1, max_batches_per_epoch=2,
                                                                              threads=1, seed=7))
        assert result.status == "ok", result.error
        drawn = (torch.rand(4).tolist(), np.random.rand(4).tolist(), [random.random() for _ in range(4)])
        for name, a, b in zip(("torch", "numpy", "random"), expected, drawn):
            assert a == b, f"{name}'s global stream moved"
        print("unchanged")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0 and out.stdout.strip() == "unchanged", out.stderr[-2000:]


def test_callback_each_epoch_and_metrics_ranges(digits: Dataset) -> None:
    seen: list[EpochMetrics] = []
    result = train_candidate(_mlp(), digits, TrainConfig(epochs=3, max_batches_per_epoch=3, threads=1),
                             callback=seen.append)
    assert [m.epoch for m in seen] == [1, 2, 3] and tuple(seen) == result.epochs
    for m in seen:
        assert all(0.0 <= acc <= 1.0 for acc in (m.train_acc, m.val_acc, m.test_acc))
        assert m.train_loss > 0 and m.val_loss > 0 and m.test_loss > 0 and m.seconds > 0
    assert seen[0].lr > seen[1].lr > seen[2].lr > 0  # cosine annealing per step
    assert seen[0].lr < 0.05


def test_warmup_and_constant_schedule(digits: Dataset) -> None:
    warm = train_candidate(_mlp(), digits, TrainConfig(epochs=3, warmup_epochs=1, max_batches_per_epoch=4,
                                                       threads=1))
    assert warm.epochs[0].lr == pytest.approx(0.05)  # the warmup's last step reaches the peak
    assert warm.epochs[1].lr > warm.epochs[2].lr
    flat = train_candidate(_mlp(), digits, TrainConfig(epochs=2, schedule="constant", max_batches_per_epoch=2,
                                                       threads=1))
    assert [m.lr for m in flat.epochs] == [0.05, 0.05]


def test_stop_training_from_the_callback(digits: Dataset) -> None:
    def stop_at_two(metrics: EpochMetrics) -> None:
        if metrics.epoch == 2:
            raise StopTraining

    result = train_candidate(_mlp(), digits, TrainConfig(epochs=5, max_batches_per_epoch=2, threads=1),
                             callback=stop_at_two)
    assert result.status == "stopped" and result.error == "" and [m.epoch for m in result.epochs] == [1, 2]


def test_other_callback_errors_propagate(digits: Dataset) -> None:
    def broken(metrics: EpochMetrics) -> None:
        raise KeyError("scheduler bug")

    with pytest.raises(KeyError, match="scheduler bug"):
        train_candidate(_mlp(), digits, QUICK, callback=broken)


def test_forward_error_fails_the_trial(digits: Dataset) -> None:
    result = train_candidate(_Failing(RuntimeError("boom: shapes do not match")), digits, QUICK)
    assert result.status == "failed" and result.error == "RuntimeError: boom: shapes do not match"
    assert result.epochs == () and result.final is None and result.best_val_acc is None


def test_finished_epochs_are_kept_on_failure(digits: Dataset) -> None:
    calls_per_epoch = 4 + 1 + 1  # training batches + one val and one test evaluation batch
    module = _Failing(ValueError("late failure"), ok_calls=calls_per_epoch + 2)
    result = train_candidate(module, digits, QUICK)
    assert result.status == "failed" and result.error == "ValueError: late failure"
    assert [m.epoch for m in result.epochs] == [1]


def test_nan_loss_fails_the_trial(digits: Dataset) -> None:
    result = train_candidate(_NaN(), digits, QUICK)
    assert result.status == "failed" and result.error == "NaN loss at epoch 1 step 1"


def test_memory_error_fails_the_trial(digits: Dataset) -> None:
    result = train_candidate(_Failing(MemoryError("cannot allocate 64 GiB")), digits, QUICK)
    assert result.status == "failed" and result.error.startswith("out of memory")
    assert "cannot allocate 64 GiB" in result.error


def test_wrong_output_shape_fails_the_trial(digits: Dataset) -> None:
    torch.manual_seed(0)
    result = train_candidate(nn.Sequential(nn.Flatten(), nn.Linear(64, 7)), digits, QUICK)
    assert result.status == "failed" and "expected logits" in result.error and result.error.startswith("ValueError")


def test_result_round_trips_through_json(digits: Dataset) -> None:
    result = train_candidate(_mlp(), digits, QUICK)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["final"]["epoch"] == 2 and data["best_val_acc"] == result.best_val_acc
    assert data["config"]["max_batches_per_epoch"] == 4
    assert TrainResult.from_dict(data) == result


def test_bad_device_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda")
