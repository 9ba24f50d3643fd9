"""Labelled benchmarks: sampled architectures trained with a fixed protocol, stored in one file.

File format (``.jsonl.gz``): gzip-compressed JSON Lines. The first line is a header::

    {"format": "nas-labelled-benchmark", "version": 1, "space": ..., "dataset": ..., "input_shape": [...],
     "num_classes": ..., "seed": ..., "protocol": {TrainConfig as a dict}, "created": ...}

and every further line is one trained architecture (:class:`BenchRow`): hash, derivation string, standard
architecture string, params, FLOPs, per-epoch curves, final metrics, status and error, seconds, and the ONNX file
(base64, weights zeroed: see :func:`structure_only`; candidate ``i``'s initial weights are reproducible from the
seed). Rows are appended one gzip member at a time and flushed, so a killed build loses at most the row in
progress and :func:`build_benchmark` resumes where it stopped. Load with :func:`load_benchmark`.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nas.errors import NasError

FORMAT = "nas-labelled-benchmark"
VERSION = 1


class BenchmarkFileError(NasError, ValueError):
    """A benchmark file is missing, corrupt, or belongs to another space/dataset/protocol."""


@dataclass(frozen=True)
class BenchRow:
    """One trained architecture."""

    index: int
    hash: str
    derivation: str
    arch: str | None
    params: int
    flops: int
    status: str
    error: str
    curves: list[dict[str, Any]]
    final: dict[str, Any] | None
    best_val_acc: float | None
    seconds: float
    onnx: bytes = field(repr=False, default=b"")

    @property
    def val_acc(self) -> float | None:
        return None if self.final is None else self.final.get("val_acc")

    @property
    def test_acc(self) -> float | None:
        return None if self.final is None else self.final.get("test_acc")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["onnx"] = base64.b64encode(self.onnx).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchRow:
        data = dict(data)
        data["onnx"] = base64.b64decode(data.get("onnx", ""))
        return cls(**data)


@dataclass(frozen=True)
class LabelledBenchmark:
    """A header and its rows (see the module docstring)."""

    header: dict[str, Any]
    rows: list[BenchRow]

    @property
    def space(self) -> str:
        return self.header["space"]

    @property
    def dataset(self) -> str:
        return self.header["dataset"]

    def trained(self) -> list[BenchRow]:
        """Rows whose training finished (status ``ok``) with a validation accuracy."""
        return [r for r in self.rows if r.status == "ok" and r.val_acc is not None]


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with gzip.open(path, "rt") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        raise BenchmarkFileError(f"{path}: line {number} is not JSON (truncated file?)") from None
    except (OSError, EOFError) as err:
        raise BenchmarkFileError(f"{path}: not a readable gzip benchmark file ({err})") from None


def load_benchmark(path: str | Path) -> LabelledBenchmark:
    """Read a benchmark file (raises :class:`BenchmarkFileError` naming the problem)."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkFileError(f"benchmark file not found: {path}")
    lines = _read_lines(path)
    header = next(lines, None)
    if not header or header.get("format") != FORMAT:
        raise BenchmarkFileError(f"{path}: not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise BenchmarkFileError(f"{path}: format version {header.get('version')} is not supported (want {VERSION})")
    rows = []
    for data in lines:
        try:
            rows.append(BenchRow.from_json(data))
        except TypeError as err:
            raise BenchmarkFileError(f"{path}: malformed row ({err})") from None
    return LabelledBenchmark(header, rows)


def structure_only(model: Any) -> bytes:
    """The ONNX file with every weight zeroed: the architecture's identity without its (reproducible, seeded)
    initial weights, so that a row costs kilobytes once gzipped instead of megabytes."""
    import onnx

    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for init in stripped.graph.initializer:
        if init.raw_data:
            init.raw_data = bytes(len(init.raw_data))
        else:
            for name in ("float_data", "int64_data", "int32_data", "double_data"):
                values = getattr(init, name)
                if len(values):
                    values[:] = [0] * len(values)
    return stripped.SerializeToString()


def _append(path: Path, record: dict[str, Any]) -> None:
    with gzip.open(path, "at") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def build_benchmark(space_name: str, dataset_name: str, n: int, out: str | Path, *, epochs: int = 10,
                    seed: int = 0, config: Any = None, input_shape: tuple[int, ...] | None = None,
                    limits: Any = None, on_row: Callable[[BenchRow], None] | None = None) -> LabelledBenchmark:
    """Sample ``n`` distinct architectures of ``space_name``, train each on ``dataset_name`` with the protocol
    ``config`` (a :class:`nas.train.TrainConfig`; ``epochs`` and ``seed`` override it) and append them to ``out``.
    ``limits`` (a :class:`search_spaces.Limits`) bounds the sampled architectures; it is part of the header.

    Deterministic for a seed: candidate ``i`` is sampled with ``Random(f"{seed}:{i}")`` (duplicates by canonical
    hash are skipped) and initialised with ``torch.manual_seed(seed * 100003 + i)`` inside ``fork_rng`` (the caller's
    global RNGs are left as they were). An existing ``out`` with the same header is resumed: finished rows are kept,
    not retrained.
    """
    import torch

    from nas.candidate import build_candidate
    from nas.data import load_dataset
    from nas.train import TrainConfig, train_candidate
    from search_spaces.spaces import get_space

    dataset = load_dataset(dataset_name, seed=seed)
    shape = tuple(input_shape or dataset.input_shape)
    space = get_space(space_name, shape, limits=limits)
    protocol = replace(config or TrainConfig(), epochs=epochs, seed=seed)
    header = {"format": FORMAT, "version": VERSION, "space": space_name, "dataset": dataset_name,
              "input_shape": list(shape), "num_classes": dataset.num_classes, "seed": seed,
              "protocol": asdict(protocol), "limits": asdict(space.limits)}
    path = Path(out)
    rows: list[BenchRow] = []
    if path.exists():
        existing = load_benchmark(path)
        keys = ("space", "dataset", "input_shape", "num_classes", "seed", "protocol", "limits")
        if any(existing.header.get(k) != header[k] for k in keys):
            raise BenchmarkFileError(f"{path} holds a benchmark with another space, dataset, seed or protocol; "
                                     "choose another --out")
        rows = list(existing.rows)
        header = existing.header
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        header["created"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        _append(path, header)
    seen = {r.hash for r in rows}  # finished rows are skipped when the same samples come round again
    index = 0
    while len(rows) < n:
        derivation = space.sample(random.Random(f"{seed}:{index}"))
        with torch.random.fork_rng(devices=[]):  # the module's weights are seeded; the caller's RNG is untouched
            torch.manual_seed(seed * 100003 + index)
            cand = build_candidate(space, derivation, dataset.num_classes)
        if cand.hash in seen:
            index += 1
            continue
        seen.add(cand.hash)
        result = train_candidate(cand.module, dataset, protocol)
        row = BenchRow(index=index, hash=cand.hash, derivation=str(derivation), arch=cand.arch, params=cand.params,
                       flops=cand.flops, status=result.status, error=result.error,
                       curves=[asdict(e) for e in result.epochs],
                       final=None if result.final is None else asdict(result.final),
                       best_val_acc=result.best_val_acc, seconds=result.seconds,
                       onnx=structure_only(cand.onnx_model))
        _append(path, row.to_json())
        rows.append(row)
        if on_row is not None:
            on_row(row)
        index += 1
    return LabelledBenchmark(header, rows)
