"""Labelled benchmarks: build (train sampled architectures), load, and correlate zero-cost proxies."""

from nas.bench.labelled import BenchmarkFileError, BenchRow, LabelledBenchmark, build_benchmark, load_benchmark

__all__ = ["BenchRow", "BenchmarkFileError", "LabelledBenchmark", "build_benchmark", "load_benchmark"]
