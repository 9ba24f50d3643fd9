"""Labelled corpora for the ONNX-Net predictor: every labelled architecture as an encoded ONNX graph.

A corpus file (``.jsonl.gz``) has a header line ``{"format": "nas-predictor-corpus", "version": 1, "space": ...,
"dataset": ..., "variant": ...}`` and one line per architecture: ``{"key", "acc", "params", "flops",
"graph": EncodedGraph.to_json(), "features": graph_features}``, where ``features`` are the GRAF-style graph
features used by the baseline. Sources: the platform's labelled benchmarks (``nas bench build`` files: their
structure-only ONNX files) and the NAS-Bench-Macro table (networks rebuilt from the ``nb-macro`` template).
Encoding once and caching keeps ``nas predictor eval`` fast.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

FORMAT = "nas-predictor-corpus"
VERSION = 1


@dataclass(frozen=True)
class CorpusRow:
    """One labelled architecture of a corpus."""

    key: str
    acc: float
    params: int
    flops: int
    graph: Any  # predictors.onnx_net.EncodedGraph
    features: np.ndarray


@dataclass(frozen=True)
class Corpus:
    """A space's labelled architectures (see the module docstring)."""

    space: str
    dataset: str
    variant: str
    rows: list[CorpusRow]

    @property
    def name(self) -> str:
        return f"{self.space}/{self.dataset}"

    def accuracies(self) -> np.ndarray:
        return np.asarray([r.acc for r in self.rows])


def _rows_from_models(items: Iterator[tuple[str, float, int, int, bytes | Any]], variant: str,
                      progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    import onnx

    from predictors.onnx_net.features import graph_features
    from predictors.onnx_net.predictor import encode_graph, skeleton

    for i, (key, acc, params, flops, model) in enumerate(items):
        proto = skeleton(onnx.load_model_from_string(model) if isinstance(model, bytes) else model)
        graph = encode_graph(proto, variant=variant)
        yield {"key": key, "acc": float(acc), "params": int(params), "flops": int(flops), "graph": graph.to_json(),
               "features": graph_features(proto).tolist()}
        if progress is not None:
            progress(i + 1)


def write_corpus(path: str | Path, space: str, dataset: str, rows: Iterator[dict[str, Any]], variant: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with gzip.open(tmp, "wt") as handle:
        handle.write(json.dumps({"format": FORMAT, "version": VERSION, "space": space, "dataset": dataset,
                                 "variant": variant}) + "\n")
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    tmp.replace(path)
    return path


def corpus_from_benchmark(bench_path: str | Path, out: str | Path, *, variant: str = "chain",
                          progress: Callable[[int], None] | None = None) -> Path:
    """Encode the successfully trained rows of a labelled benchmark file (label: final validation accuracy)."""
    from nas.bench.labelled import load_benchmark

    bench = load_benchmark(bench_path)
    items = ((r.hash, r.val_acc, r.params, r.flops, r.onnx) for r in bench.rows
             if r.status == "ok" and r.val_acc is not None and r.onnx)
    return write_corpus(out, bench.space, bench.header.get("dataset", "?"), _rows_from_models(items, variant, progress),
                        variant)


def corpus_from_nas_bench_macro(table_path: str | Path, out: str | Path, *, variant: str = "chain",
                                limit: int | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """Rebuild every NAS-Bench-Macro network from the ``nb-macro`` template and encode it (label: mean CIFAR-10
    test accuracy of the table, in [0, 1])."""
    import torch

    from nas.candidate import build_candidate
    from search_spaces import get_space

    table = json.loads(Path(table_path).read_text())
    space = get_space("nb-macro", (3, 32, 32))
    archs = sorted(table)[:limit]

    def items() -> Iterator[tuple[str, float, int, int, Any]]:
        with torch.no_grad():
            for arch in archs:
                cand = build_candidate(space, space.from_arch(arch), 10, check=False)
                yield arch, table[arch]["mean_acc"] / 100.0, table[arch]["params"], table[arch]["flops"], cand.onnx_model

    return write_corpus(out, "nb-macro", "cifar10", _rows_from_models(items(), variant, progress), variant)


def load_corpus(path: str | Path) -> Corpus:
    """Read a corpus file written by :func:`write_corpus`."""
    from predictors.onnx_net.predictor import EncodedGraph

    path = Path(path)
    try:
        with gzip.open(path, "rt") as handle:
            header = json.loads(handle.readline())
            if header.get("format") != FORMAT:
                raise ValueError(f"{path} is not a {FORMAT} file")
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, json.JSONDecodeError, EOFError) as err:
        raise ValueError(f"cannot read predictor corpus {path}: {err}") from err
    return Corpus(header["space"], header["dataset"], header["variant"],
                  [CorpusRow(r["key"], r["acc"], r["params"], r["flops"], EncodedGraph.from_json(r["graph"]),
                             np.asarray(r["features"])) for r in rows])
