"""Labelled benchmarks: build (real training on digits), resume after a crash, load, corrupt files."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import pytest

from nas.bench import BenchmarkFileError, build_benchmark, load_benchmark
from nas.train import TrainConfig

QUICK = TrainConfig(epochs=1, batch_size=64, optimizer="adamw", threads=1, max_batches_per_epoch=3)


def test_build_trains_and_stores_everything(tmp_path) -> None:
    out = tmp_path / "b.jsonl.gz"
    bench = build_benchmark("einspace", "digits", 3, out, epochs=2, seed=1, config=QUICK)
    assert len(bench.rows) == 3 and len({r.hash for r in bench.rows}) == 3
    loaded = load_benchmark(out)
    assert loaded.header["space"] == "einspace" and loaded.header["dataset"] == "digits"
    assert loaded.header["protocol"]["epochs"] == 2 and loaded.header["input_shape"] == [1, 8, 8]
    assert [r.to_json() for r in loaded.rows] == [r.to_json() for r in bench.rows]
    for row in loaded.rows:
        assert row.status in ("ok", "failed")
        assert row.onnx[:2] and row.params > 0 and row.flops >= 0 and row.derivation.startswith("(")
        if row.status == "ok":
            assert len(row.curves) == 2 and 0.0 <= row.val_acc <= 1.0 and 0.0 <= row.test_acc <= 1.0


def test_build_is_deterministic_and_resumes_without_retraining(tmp_path) -> None:
    full = build_benchmark("einspace", "digits", 4, tmp_path / "full.jsonl.gz", epochs=1, seed=2, config=QUICK)
    partial_path = tmp_path / "partial.jsonl.gz"
    build_benchmark("einspace", "digits", 2, partial_path, epochs=1, seed=2, config=QUICK)
    trained: list[str] = []
    resumed = build_benchmark("einspace", "digits", 4, partial_path, epochs=1, seed=2, config=QUICK,
                              on_row=lambda row: trained.append(row.hash))
    assert [r.hash for r in resumed.rows] == [r.hash for r in full.rows]
    assert len(trained) == 2  # only the two missing architectures were trained
    assert [r.val_acc for r in resumed.rows] == [r.val_acc for r in full.rows]


def test_resuming_with_another_protocol_is_refused(tmp_path) -> None:
    out = tmp_path / "b.jsonl.gz"
    build_benchmark("einspace", "digits", 1, out, epochs=1, seed=0, config=QUICK)
    with pytest.raises(BenchmarkFileError, match="another space, dataset, seed or protocol"):
        build_benchmark("einspace", "digits", 2, out, epochs=1, seed=0, config=replace(QUICK, lr=0.5))


def test_a_truncated_row_is_reported_and_earlier_rows_survive(tmp_path) -> None:
    out = tmp_path / "b.jsonl.gz"
    build_benchmark("einspace", "digits", 2, out, epochs=1, seed=0, config=QUICK)
    with gzip.open(out, "at") as handle:
        handle.write('{"index": 9, "hash": "abc"')  # a build killed mid-row
    with pytest.raises(BenchmarkFileError, match="line 4 is not JSON"):
        load_benchmark(out)


@pytest.mark.parametrize("content, message", [(b"not gzip", "not a readable gzip"),
                                              (gzip.compress(b'{"format": "other"}\n'), "not a nas-labelled"),
                                              (gzip.compress(json.dumps({"format": "nas-labelled-benchmark",
                                                                         "version": 99}).encode()), "version 99")])
def test_corrupt_benchmark_files(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(content)
    with pytest.raises(BenchmarkFileError, match=message):
        load_benchmark(path)


def test_missing_benchmark_file(tmp_path) -> None:
    with pytest.raises(BenchmarkFileError, match="not found"):
        load_benchmark(tmp_path / "nope.jsonl.gz")


def test_correlate_reports_every_proxy_on_the_same_rows(tmp_path) -> None:
    from nas.bench.correlate import correlate, rank_correlations
    from predictors import PROXY_NAMES

    bench = build_benchmark("einspace", "digits", 5, tmp_path / "b.jsonl.gz", epochs=1, seed=3, config=QUICK)
    report = correlate(bench, batch_size=16, lga_steps=2)
    assert report["space"] == "einspace" and report["dataset"] == "digits"
    assert report["rows"] == len(bench.trained())
    assert set(PROXY_NAMES) | {"lga@2"} == set(report["proxies"])
    for r in report["proxies"].values():
        assert set(r) >= {"kendall_tau", "spearman", "median_seconds"}
        assert r["kendall_tau"] is None or -1.0 <= r["kendall_tau"] <= 1.0
    assert rank_correlations([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]) == (1.0, 1.0)
    assert rank_correlations([4, 3, 2, 1], [0.1, 0.2, 0.3, 0.4]) == (-1.0, -1.0)
    assert rank_correlations([float("-inf"), 2, 3, 4], [0.1, 0.2, 0.3, 0.4])[0] == 1.0  # the sentinel ranks last
    assert rank_correlations([1, 1, 1], [0.1, 0.2, 0.3]) == (None, None)


def test_bench_cli_build_and_correlate(tmp_path) -> None:
    import subprocess
    import sys

    out, report = tmp_path / "b.jsonl.gz", tmp_path / "r.json"
    cfg = tmp_path / "protocol.yaml"
    cfg.write_text("optimizer: adamw\nmax_batches_per_epoch: 2\nthreads: 1\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "nas.cli.app", *a], capture_output=True, text=True)  # noqa
    built = run("bench", "build", "--space", "einspace", "--dataset", "digits", "-n", "3", "--epochs", "1",
                "--seed", "0", "--out", str(out), "--config", str(cfg))
    assert built.returncode == 0, built.stderr
    corr = run("bench", "correlate", str(out), "--json", str(report), "--proxies", "params,flops,synflow,lga")
    assert corr.returncode == 0, corr.stderr
    data = json.loads(report.read_text())
    assert set(data) == {"space", "dataset", "rows", "settings", "proxies"} and set(data["proxies"]) == {
        "params", "flops", "synflow", "lga"}
    bad = run("bench", "correlate", str(tmp_path / "missing.jsonl.gz"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: benchmark file not found")
    bad = run("bench", "build", "--dataset", "digts", "--out", str(tmp_path / "x.jsonl.gz"))
    assert bad.returncode == 2 and "did you mean 'digits'" in bad.stderr


def test_build_and_proxy_scores_leave_the_global_rngs_alone(tmp_path) -> None:
    """Candidates are initialised from seeded RNGs inside ``fork_rng``: the caller's torch, numpy and Python
    streams are where they were."""
    import random

    import numpy as np
    import torch

    from nas.bench.correlate import proxy_scores

    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    bench = build_benchmark("einspace", "digits", 2, tmp_path / "b.jsonl.gz", epochs=1, seed=4, config=QUICK)
    rows, scores = proxy_scores(bench, proxies=["synflow", "zen"], batch_size=8)
    assert len(rows) == len(bench.trained()) and set(scores) == {"synflow", "zen"}
    assert torch.equal(torch.get_rng_state(), before[0]), "the torch RNG changed"
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]
