"""Labelled corpora for the ONNX-Net predictor: every labelled architecture as an encoded ONNX graph.

A corpus file (``.jsonl.gz``) has a header line ``{"format": "nas-predictor-corpus", "version": 2, "space": ...,
"dataset": ..., "protocol": ..., "variant": ...}`` and one line per architecture: ``{"key", "hash", "acc",
"params", "flops", "graph": EncodedGraph.to_json(), "features": graph_features}``, where ``hash`` is the canonical
graph hash, ``features`` the GRAF-lite graph features of the baseline. ``space/dataset/protocol`` is one label
set, one ranking group (:attr:`Corpus.group`): accuracies of different protocols are never compared.

Sources: the platform's labelled benchmarks (``nas bench build`` files: their structure-only ONNX files), the
NAS-Bench-Macro table (6,561 networks rebuilt from the ``nb-macro`` template) and the NATS-Bench SSS table
(networks rebuilt from the ``nats-sss`` template; one corpus per dataset, CIFAR-10, CIFAR-100, ImageNet16-120,
from one encoding). Networks are built without weights: the encoder reads structure and weight shapes only.
Encoding once and caching keeps ``nas predictor eval`` fast. Version 1 files (the erased-wiring encoding) are
refused with the command that rebuilds them.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "nas-predictor-corpus"
VERSION = 2
REBUILD = "python benchmarks/predictor_corpus.py"


@dataclass(frozen=True)
class CorpusRow:
    """One architecture of a corpus (``acc`` is None in an unlabelled one)."""

    key: str
    acc: float | None
    params: int
    flops: int
    graph: Any  # predictors.onnx_net.EncodedGraph
    features: np.ndarray
    hash: str = ""


@dataclass(frozen=True)
class Corpus:
    """A space's labelled architectures (see the module docstring)."""

    space: str
    dataset: str
    variant: str
    rows: list[CorpusRow]
    protocol: str = ""

    @property
    def name(self) -> str:
        return f"{self.space}/{self.dataset}"

    @property
    def group(self) -> str:
        """The ranking group: ``space/dataset`` and, where the corpus names one, ``/protocol``."""
        return f"{self.name}/{self.protocol}" if self.protocol else self.name

    def accuracies(self) -> np.ndarray:
        return np.asarray([r.acc for r in self.rows], dtype=float)


def encode_rows(items: Iterator[tuple[str, str, int, int, Any]], variant: str = "relative", *,
                features: bool = True, progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """``{"key", "hash", "params", "flops", "graph", "features"}`` of each ``(key, hash, params, flops, model)``
    (``model``: ONNX bytes or ModelProto, with or without weights), with one text encoder for all."""
    import onnx

    from predictors.onnx_net.features import graph_features
    from predictors.onnx_net.predictor import encode_graph, skeleton
    from predictors.onnx_text import OnnxTextEncoder

    encoder = OnnxTextEncoder()
    for i, (key, digest, params, flops, model) in enumerate(items):
        proto = skeleton(onnx.load_model_from_string(model) if isinstance(model, bytes) else model)
        graph = encode_graph(proto, variant=variant, encoder=encoder)
        yield {"key": key, "hash": digest, "params": int(params), "flops": int(flops), "graph": graph.to_json(),
               "features": graph_features(proto).tolist() if features else []}
        if progress is not None:
            progress(i + 1)


def write_corpus(path: str | Path, space: str, dataset: str, rows: Iterator[dict[str, Any]], variant: str,
                 protocol: str = "") -> Path:
    """Write a corpus file (atomically: a temporary file renamed at the end)."""
    return write_corpora({Path(path): (space, dataset, protocol, None)}, rows, variant)[0]


def write_corpora(outputs: Mapping[Path, tuple[str, str, str, dict[str, float] | None]],
                  rows: Iterator[dict[str, Any]], variant: str) -> list[Path]:
    """Write several corpora of one encoding: ``{path: (space, dataset, protocol, labels)}``, where ``labels``
    maps a row's key to its accuracy (None: the row's own ``acc``; a key missing from ``labels`` is skipped)."""
    handles = {}
    try:
        for path, (space, dataset, protocol, _) in outputs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            handles[path] = (tmp, gzip.open(tmp, "wt"))
            handles[path][1].write(json.dumps({"format": FORMAT, "version": VERSION, "space": space,
                                               "dataset": dataset, "protocol": protocol, "variant": variant}) + "\n")
        for row in rows:
            for path, (_, _, _, labels) in outputs.items():
                if labels is None:
                    handles[path][1].write(json.dumps(row) + "\n")
                elif row["key"] in labels:
                    handles[path][1].write(json.dumps({**row, "acc": labels[row["key"]]}) + "\n")
        for path, (tmp, handle) in handles.items():
            handle.close()
            tmp.replace(path)
    finally:
        for tmp, handle in handles.values():
            handle.close()
            if tmp.exists():
                tmp.unlink()
    return list(outputs)


def corpus_from_benchmark(bench_path: str | Path, out: str | Path, *, variant: str = "relative",
                          progress: Callable[[int], None] | None = None) -> Path:
    """Encode the successfully trained rows of a labelled benchmark file (label: final validation accuracy;
    protocol: its training epochs)."""
    from nas.bench.labelled import load_benchmark

    bench = load_benchmark(bench_path)
    items = ((r.hash, r.hash, r.params, r.flops, r.onnx) for r in bench.rows
             if r.status == "ok" and r.val_acc is not None and r.onnx)
    labels = {r.hash: float(r.val_acc) for r in bench.rows if r.status == "ok" and r.val_acc is not None}
    epochs = (bench.header.get("protocol") or {}).get("epochs")
    protocol = f"{epochs}ep" if epochs else ""
    return write_corpora({Path(out): (bench.space, bench.header.get("dataset", "?"), protocol, labels)},
                         encode_rows(items, variant, progress=progress), variant)[0]


def _space_items(space_name: str, archs: Sequence[str], tables: dict[str, dict[str, Any]] | None = None
                 ) -> Iterator[tuple[str, str, int, int, Any]]:
    """Each architecture string of a benchmark space built without weights: (arch, hash, params, flops, model)."""
    import torch

    from nas.candidate import build_candidate
    from search_spaces import get_space

    space = get_space(space_name, (3, 32, 32))
    with torch.no_grad():
        for arch in archs:
            cand = build_candidate(space, space.from_arch(arch), 10, check=False, weights=False)
            row = (tables or {}).get(arch, {})
            yield (arch, cand.hash, int(row.get("params", cand.params)), int(row.get("flops", cand.flops)),
                   cand.onnx_model)


def corpus_from_nas_bench_macro(table_path: str | Path, out: str | Path, *, variant: str = "relative",
                                limit: int | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """Rebuild every NAS-Bench-Macro network from the ``nb-macro`` template and encode it (label: mean CIFAR-10
    test accuracy of the table, in [0, 1])."""
    table = json.loads(Path(table_path).read_text())
    archs = sorted(table)[:limit]
    labels = {a: table[a]["mean_acc"] / 100.0 for a in archs}
    return write_corpora({Path(out): ("nb-macro", "cifar10", "nas-bench-macro", labels)},
                         encode_rows(_space_items("nb-macro", archs, table), variant, progress=progress), variant)[0]


#: NATS-Bench SSS columns of ``nats-sss.json``: (column, dataset name, corpus file stem).
NATS_SSS_DATASETS = (("acc", "cifar10", "nats-sss-cifar10"), ("c100", "cifar100", "nats-sss-cifar100"),
                     ("in16", "imagenet16-120", "nats-sss-imagenet16"))


def corpora_from_nats_sss(table_path: str | Path, out_dir: str | Path, *, variant: str = "relative",
                          sample: int | None = None, seed: int = 0,
                          progress: Callable[[int], None] | None = None) -> list[Path]:
    """Rebuild the NATS-Bench SSS networks from the ``nats-sss`` template (all 32,768, or a seeded uniform
    ``sample`` of them), encode each once and write one corpus per dataset (label: the table's accuracy in
    [0, 1]; protocol ``nats-bench-sss``, see ``../shared/data/nats-sss/README.md``)."""
    table = json.loads(Path(table_path).read_text())
    archs = sorted(table)
    if sample is not None and sample < len(archs):
        archs = sorted(random.Random(seed).sample(archs, sample))
    outputs = {Path(out_dir) / f"{stem}.jsonl.gz": ("nats-sss", dataset, "nats-bench-sss",
                                                     {a: table[a][column] / 100.0 for a in archs})
               for column, dataset, stem in NATS_SSS_DATASETS}
    return write_corpora(outputs, encode_rows(_space_items("nats-sss", archs), variant, progress=progress), variant)


def unlabelled_space_corpus(space_name: str, out: str | Path, *, variant: str = "relative",
                            progress: Callable[[int], None] | None = None) -> Path:
    """Every architecture of a finite benchmark space (``nb201``: 15,625), encoded without labels or GRAF
    features (what the structure test of the predictor input reads)."""
    from search_spaces import get_space

    archs = list(get_space(space_name, (3, 32, 32)).enumerate())
    return write_corpora({Path(out): (space_name, "", "", None)},
                         encode_rows(_space_items(space_name, archs), variant, features=False, progress=progress),
                         variant)[0]


def load_corpus(path: str | Path) -> Corpus:
    """Read a corpus file written by :func:`write_corpus` (raises ``ValueError`` naming the problem)."""
    from predictors.onnx_net.predictor import EncodedGraph

    path = Path(path)
    try:
        with gzip.open(path, "rt") as handle:
            header = json.loads(handle.readline())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise ValueError(f"{path} is not a {FORMAT} file")
            if header.get("version") != VERSION:
                raise ValueError(f"{path} is a version {header.get('version')} corpus (this code reads version "
                                 f"{VERSION}); rebuild it with {REBUILD}")
            rows = [json.loads(line) for line in handle if line.strip()]
        return Corpus(header["space"], header["dataset"], header["variant"],
                      [CorpusRow(r["key"], r.get("acc"), r["params"], r["flops"], EncodedGraph.from_json(r["graph"]),
                                 np.asarray(r.get("features", [])), r.get("hash", "")) for r in rows],
                      header.get("protocol", ""))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read predictor corpus {path}: {err}") from None
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a valid predictor corpus (bad row: {err!r})") from None
