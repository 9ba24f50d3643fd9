"""Candidates trained as Ray Tune trials: real local Ray (2 CPUs), no mocks.

One Tune run (a module fixture) holds normal specs, every fault injection and a few dead architectures that ASHA
stops early; the tests check what it streamed back. Starting Ray and the trial workers (each imports torch) costs
most of the time, so there is only one run.
"""

from __future__ import annotations

import dataclasses
import resource
import socket
import time
from typing import Any

import pytest
import torch

from nas.candidate import build_candidate
from nas.search.trainable import TrialSpec, run_spec
from nas.search.tune_runner import RayConnectionError, TrialOutcome, TuneSettings, ensure_ray, run_trials
from nas.train import TrainConfig
from search_spaces.spaces import get_space

SHAPE = (1, 8, 8)
EPOCHS = 4
# NB201 cells (|node1|+|node2|+|node3|) that learn something in a few batches, and one whose output is constant
GOOD = ["|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|",
        "|skip_connect~0|+|none~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|",
        "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|"]
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
PROTOCOL = TrainConfig(epochs=EPOCHS, threads=1, max_batches_per_epoch=6, optimizer="adamw").to_dict()
FAULTS = {10: "raise", 11: "nan", 12: "oom", 13: "crash"}
DEAD_IDS = (20, 21, 22)


def _spec(trial_id: int, arch: str, fault: str | None = None, memory_limit_mb: int | None = None) -> TrialSpec:
    space = get_space("nb201", SHAPE)
    derivation = space.from_arch(arch)
    candidate = build_candidate(space, derivation, 10, check=False)
    return TrialSpec(trial_id, candidate.hash, "nb201", SHAPE, 10, str(derivation), "digits", 0, dict(PROTOCOL),
                     memory_limit_mb, fault)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Runs first, before the module's Ray instance exists (ensure_ray does nothing once Ray is initialised).
def test_unreachable_address_is_a_clear_error() -> None:
    import ray

    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    address = f"127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(RayConnectionError, match=rf"cannot connect to the Ray cluster at {address}: "):
        ensure_ray(TuneSettings(address=address))
    assert time.perf_counter() - start < 10
    assert not ray.is_initialized()


def test_specs_and_settings_round_trip_and_validate() -> None:
    spec = _spec(1, GOOD[0], "oom", 64)
    assert TrialSpec.from_dict(spec.to_dict()) == spec
    assert spec.epochs == EPOCHS and spec.input_shape == SHAPE
    settings = TuneSettings(num_cpus=2, gpus_per_trial=0.25, scheduler="fifo", memory_limit_mb=256)
    assert TuneSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match="did you mean 'derivation'"):
        TrialSpec.from_dict({**spec.to_dict(), "derivaton": "x"})
    with pytest.raises(ValueError, match="fault must be"):
        TrialSpec.from_dict({**spec.to_dict(), "fault": "segfault"})
    with pytest.raises(ValueError, match="unknown training option"):
        TrialSpec.from_dict({**spec.to_dict(), "train": {"epoch": 3}})
    with pytest.raises(ValueError, match="scheduler must be one of asha, fifo"):
        TuneSettings(scheduler="pbt")
    with pytest.raises(ValueError, match="did you mean 'grace_period'"):
        TuneSettings.from_dict({"grace_periods": 1})
    with pytest.raises(ValueError, match="trial ids must be unique; repeated: 1"):
        run_trials([spec, spec], TuneSettings())


def test_run_spec_outside_ray_restores_the_memory_cap_and_threads() -> None:
    limits, threads = resource.getrlimit(resource.RLIMIT_AS), torch.get_num_threads()
    reports: list[dict[str, Any]] = []
    final = run_spec(_spec(1, GOOD[0], "oom", 256), reports.append, cpus=1)
    assert final["status"] == "failed" and final["error"].startswith("out of memory: "), final
    assert str(2 * 256 * 2**20) in final["error"]  # the injected allocation, refused by the cap
    assert reports == [final] and final["finished"] and final["epoch"] == 0
    assert resource.getrlimit(resource.RLIMIT_AS) == limits and torch.get_num_threads() == threads
    wrong = dataclasses.replace(_spec(2, GOOD[0]), hash="0" * 32)
    final = run_spec(wrong, reports.append)
    assert final["status"] == "failed" and final["error"].startswith("ValueError: hash mismatch: the spec says 000")


@pytest.fixture(scope="module")
def ray_session(request: pytest.FixtureRequest) -> float:
    """A local Ray instance with 2 CPUs for this module; returns the seconds ``ray.init`` took."""
    import ray

    start = time.perf_counter()
    ensure_ray(TuneSettings(num_cpus=2))
    request.addfinalizer(ray.shutdown)
    return time.perf_counter() - start


@pytest.fixture(scope="module")
def batch(ray_session: float) -> Any:
    """One Tune run: 4 normal specs, the 4 fault injections, 3 dead architectures; ASHA with grace period 1."""
    specs = [_spec(i, arch) for i, arch in enumerate(GOOD)]
    specs += [_spec(i, GOOD[0], fault, 512 if fault == "oom" else None) for i, fault in FAULTS.items()]
    specs += [_spec(i, DEAD) for i in DEAD_IDS]
    settings = TuneSettings(num_cpus=2, cpus_per_trial=1, max_concurrent=2, scheduler="asha", grace_period=1,
                            reduction_factor=2, memory_limit_mb=2048)
    epochs: dict[int, list[dict[str, Any]]] = {}
    finished: list[TrialOutcome] = []
    start = time.perf_counter()
    outcomes = run_trials(specs, settings, on_epoch=lambda i, m: epochs.setdefault(i, []).append(m),
                          on_finish=finished.append)
    print(f"ray.init {ray_session:.1f} s, run_trials {time.perf_counter() - start:.1f} s")
    return specs, outcomes, finished, epochs


def test_every_spec_finishes_exactly_once(batch: Any) -> None:
    specs, outcomes, finished, _ = batch
    assert [o.trial_id for o in outcomes] == [s.trial_id for s in specs]
    assert sorted(o.trial_id for o in finished) == sorted(s.trial_id for s in specs)
    assert {o.trial_id: o for o in finished} == {o.trial_id: o for o in outcomes}
    assert all(o.hash == s.hash for o, s in zip(outcomes, specs, strict=True))


def test_faults_are_failed_outcomes_with_their_cause(batch: Any) -> None:
    _, outcomes, _, _ = batch
    by_id = {o.trial_id: o for o in outcomes}
    assert {by_id[i].status for i in FAULTS} == {"failed"}
    assert "injected fault: an exception while building the candidate" in by_id[10].error
    assert "nan" in by_id[11].error.lower() and "loss" in by_id[11].error
    assert by_id[12].error.startswith("out of memory: ") and by_id[12].resources["memory_limit_mb"] == 512
    assert str(2 * 512 * 2**20) in by_id[12].error  # the injected allocation, refused by the cap
    # the trainable raised out of Tune's function: Tune's trial error, turned into an outcome by on_trial_error
    assert by_id[13].error.startswith("trial error: ") and "injected fault: crash" in by_id[13].error
    assert all(by_id[i].epochs == [] and by_id[i].final is None for i in FAULTS)


def test_normal_trials_report_every_epoch(batch: Any) -> None:
    _, outcomes, _, epochs = batch
    for outcome in outcomes:
        if outcome.trial_id in FAULTS:
            continue
        assert outcome.status in ("ok", "stopped"), outcome
        assert outcome.error == ""
        assert [m["epoch"] for m in outcome.epochs] == list(range(1, len(outcome.epochs) + 1))
        assert outcome.epochs == epochs[outcome.trial_id]  # streamed in order through on_epoch
        assert outcome.final == outcome.epochs[-1]
        for metrics in outcome.epochs:
            assert 0.0 <= metrics["val_acc"] <= 1.0 and 0.0 <= metrics["test_acc"] <= 1.0
            assert metrics["trial_id"] == outcome.trial_id and metrics["hash"] == outcome.hash
            assert metrics["status"] == "running" and metrics["params"] > 0
        assert outcome.resources["cpu"] == 1 and outcome.resources["device"] == "cpu"
        assert outcome.resources["threads"] == 1 and all(m["threads"] == 1 for m in outcome.epochs)
        assert outcome.resources["memory_limit_mb"] == 2048 and outcome.seconds > 0


def test_asha_stops_dead_architectures_early(batch: Any) -> None:
    _, outcomes, _, _ = batch
    for outcome in outcomes:
        if outcome.status == "ok":
            assert len(outcome.epochs) == EPOCHS
        elif outcome.status == "stopped":
            assert 1 <= len(outcome.epochs) < EPOCHS
    by_id = {o.trial_id: o for o in outcomes}
    assert by_id[0].status == "ok"  # the first trial reaches every rung first: nothing to compare it with
    # the dead ones start after the good ones recorded their rungs, and their val_acc (~0.1) is below the cutoff
    assert by_id[DEAD_IDS[0]].status == "stopped" and len(by_id[DEAD_IDS[0]].epochs) == 1
    assert sum(o.status == "stopped" for o in outcomes) >= 2


def test_a_failing_driver_callback_stops_the_run(ray_session: float) -> None:
    specs = [_spec(30 + i, GOOD[0]) for i in range(3)]
    seen: list[int] = []
    finished: list[TrialOutcome] = []

    def on_epoch(trial_id: int, metrics: dict[str, Any]) -> None:
        seen.append(trial_id)
        raise KeyError("the store is down")

    with pytest.raises(KeyError, match="the store is down"):
        run_trials(specs, TuneSettings(scheduler="fifo", max_concurrent=1), on_epoch=on_epoch,
                   on_finish=finished.append)
    assert seen == [30] and finished == []  # stopped at once: the other trials never started
