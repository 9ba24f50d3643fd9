"""The proxy tables (`nas bench correlate`): LGA after training on batches other than the measured one."""

from __future__ import annotations

import numpy as np
import pytest

from nas.bench import build_benchmark
from nas.bench.correlate import correlate, lga_batches
from nas.train import TrainConfig

QUICK = TrainConfig(optimizer="adamw", lr=3e-3, max_batches_per_epoch=2, threads=1)


def test_lga_batches_never_touch_the_measured_batch() -> None:
    measured = np.random.default_rng(0).permutation(100)[:16]
    batches = lga_batches(100, measured, steps=12, batch_size=10, seed=0)
    assert len(batches) == 12 and all(len(b) == 10 for b in batches)
    assert not set(np.concatenate(batches)) & set(measured.tolist())
    # 84 examples outside the measured batch: 8 batches use each of the first 80 at most once, then a new pass
    assert len(set(np.concatenate(batches[:8]).tolist())) == 80
    assert [b.tolist() for b in lga_batches(100, measured, 12, 10, seed=0)] == [b.tolist() for b in batches]
    assert [b.tolist() for b in lga_batches(100, measured, 12, 10, seed=1)] != [b.tolist() for b in batches]
    with pytest.raises(ValueError, match="outside the measured batch"):
        lga_batches(16, np.arange(15), 3, 10, seed=0)


def test_report_records_how_lga_was_trained(tmp_path) -> None:
    protocol = TrainConfig(optimizer="sgd", lr=0.02, grad_clip=2.0, max_batches_per_epoch=2, threads=1)
    bench = build_benchmark("einspace", "digits", 3, tmp_path / "b.jsonl.gz", epochs=1, seed=1, config=protocol)
    report = correlate(bench, proxies=["ntk_cond", "lga"], batch_size=16, lga_steps=3)
    lga = report["settings"]["lga"]
    assert lga["steps"] == 3 and lga["optimizer"] == "sgd" and lga["lr"] == 0.02 and lga["grad_clip"] == 2.0
    assert lga["batch_size"] == 64 and report["settings"]["ntk_method"] == "batch"
    assert set(report["proxies"]) == {"ntk_cond", "lga", "lga@3"}
    assert report["proxies"]["lga@3"]["valid"] >= 1
