"""GPU readiness that can be checked without a GPU: a trial that asked for a GPU but trained on the CPU (here: a
real local Ray that advertises one logical GPU on a machine without CUDA) is flagged in the store
(``gpu_fallback``) and by ``nas search show``; the AMP dtype and the latency providers fall back to the CPU. The
GPU path itself is exercised by ``benchmarks/gpu_check.sh`` on a GPU machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas.candidate import build_candidate
from nas.search.latency import LatencyError, latency_providers
from nas.search.trainable import TrialSpec
from nas.search.tune_runner import TuneSettings, run_trials
from nas.store import Store
from nas.train import TrainConfig, amp_dtype
from search_spaces.spaces import get_space

SHAPE = (1, 8, 8)
ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine without CUDA")
def test_a_trial_that_asked_for_a_gpu_but_ran_on_the_cpu_is_flagged(tmp_path: Path) -> None:
    import ray

    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    ray.init(num_cpus=1, num_gpus=1, include_dashboard=False, log_to_driver=False)  # a GPU without CUDA behind it
    try:
        space = get_space("nb201", SHAPE)
        derivation = space.from_arch(ARCH)
        candidate = build_candidate(space, derivation, 10, check=False)
        protocol = TrainConfig(epochs=1, threads=1, max_batches_per_epoch=3).to_dict()
        spec = TrialSpec(1, candidate.hash, "nb201", SHAPE, 10, str(derivation), "digits", 0, protocol)
        [outcome] = run_trials([spec], TuneSettings(gpus_per_trial=1, scheduler="fifo"))
    finally:
        ray.shutdown()
    assert outcome.status == "ok", outcome.error
    assert outcome.resources["gpu"] == 1 and outcome.resources["device"] == "cpu" and outcome.resources["amp"] is None

    db = f"sqlite:///{tmp_path / 'gpu.db'}"
    with Store(db) as store:
        store.create_search("g", space="nb201", dataset="digits", config={}, seed=0, objectives=["val_acc"],
                            directions=["maximize"])
        store.add_architecture(candidate.hash, space="nb201", derivation=str(derivation), arch=ARCH,
                               onnx=b"\x08\x07", params=1, flops=1)
        cpu_only = store.start_trial("g", candidate.hash, generation=0, resources={"cpu": 1, "gpu": 0})
        store.finish_trial(cpu_only, status="ok", epochs=outcome.epochs, final=outcome.final,
                           objective_values=[outcome.final["val_acc"]], resources={"device": "cpu"})
        flagged = store.queue_trial("g", candidate.hash, generation=1)
        store.finish_trial(flagged, status="ok", epochs=outcome.epochs, final=outcome.final,
                           objective_values=[outcome.final["val_acc"]], resources=outcome.resources)
        assert [t.gpu_fallback for t in store.trials_of("g")] == [False, True]
    shown = subprocess.run([sys.executable, "-m", "nas.cli.app", "search", "show", "g", "--db", db],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert f"1 trial(s) asked for a GPU but trained on the CPU (no CUDA on their node): {flagged}" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine without CUDA")
def test_amp_and_latency_fall_back_to_the_cpu() -> None:
    assert amp_dtype("cpu", TrainConfig()) is None and amp_dtype("cuda", TrainConfig()) is None
    assert latency_providers() == ["CPUExecutionProvider"] == latency_providers("cpu")
    with pytest.raises(LatencyError, match="needs onnxruntime-gpu"):
        latency_providers("cuda")
