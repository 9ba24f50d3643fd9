"""ONNX Runtime latency of a candidate, measured on the driver: the ``latency`` objective of a search.

.. code-block:: python

    from nas.search.latency import onnx_latency_ms

    ms = onnx_latency_ms(candidate.onnx_model, (1, 8, 8))   # median ms per sample, batch 1, one thread

The model runs on ONNX Runtime's CUDA execution provider when ``onnxruntime-gpu`` is installed and sees a GPU
(:func:`latency_providers`), else on its CPU provider with one intra-op thread (so that latencies measured while
trials train beside it stay comparable), on a fixed random input of batch 1; ``warmup`` runs are discarded and the
median of ``repeats`` timed runs is returned. The latencies of one search are comparable only when they were all
measured on the same provider (a search driver measures all of its own).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from nas.errors import NasError

__all__ = ["LatencyError", "latency_providers", "onnx_latency_ms"]


class LatencyError(NasError, RuntimeError):
    """ONNX Runtime could not load or run the model (or is not installed)."""


def latency_providers(device: str = "auto") -> list[str]:
    """The ONNX Runtime execution providers latencies are measured with: ``["CUDAExecutionProvider",
    "CPUExecutionProvider"]`` for ``device="auto"`` when onnxruntime-gpu offers CUDA (or ``device="cuda"``), else
    ``["CPUExecutionProvider"]``."""
    try:
        import onnxruntime as ort
    except ImportError:
        return ["CPUExecutionProvider"]
    if device not in ("auto", "cpu", "cuda"):
        raise LatencyError(f"latency device must be auto, cpu or cuda, got {device!r}")
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not cuda:
        raise LatencyError("latency on CUDA needs onnxruntime-gpu with a visible GPU (pip install -e '.[gpu]')")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device != "cpu" else ["CPUExecutionProvider"]


def onnx_latency_ms(model: Any, input_shape: Sequence[int], *, warmup: int = 3, repeats: int = 10,
                    threads: int = 1, seed: int = 0, device: str = "auto") -> float:
    """Median latency in milliseconds per sample (batch 1) of an ONNX model on ONNX Runtime
    (:func:`latency_providers`: CUDA when onnxruntime-gpu has it, else the CPU).

    Args:
        model: an ``onnx.ModelProto`` or its serialised bytes.
        input_shape: one sample's shape without the batch dimension, e.g. ``(1, 8, 8)``.
        warmup: untimed runs first (session and allocator warm-up).
        repeats: timed runs; the median is returned.
        threads: ONNX Runtime intra-op threads.
        seed: seed of the random input.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.

    Raises:
        LatencyError: onnxruntime is missing (``pip install -e '.[cpu]'``) or cannot load/run the model.
    """
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError as err:  # pragma: no cover - depends on the installed extra
        raise LatencyError("the latency objective needs onnxruntime: pip install -e '.[cpu]' (or '.[gpu]')") from err
    data = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(bytes(data), sess_options=options, providers=latency_providers(device))
        name = session.get_inputs()[0].name
        x = np.random.default_rng(seed).standard_normal((1, *map(int, input_shape))).astype(np.float32)
        for _ in range(max(0, warmup)):
            session.run(None, {name: x})
        times = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            session.run(None, {name: x})
            times.append(time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise LatencyError(f"ONNX Runtime could not run the model: {type(err).__name__}: {err}") from err
    return 1000.0 * statistics.median(times)
