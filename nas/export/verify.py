"""Check an exported ONNX model against its torch module with ONNX Runtime."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

__all__ = ["VerifyResult", "compare_with_onnxruntime"]

_INSTALL_HINT = "pip install 'nas-platform[cpu]'"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one comparison.

    Attributes:
        max_abs_diff: largest ``|onnx - torch|`` over all outputs (``inf`` when the shapes differ).
        ok: every element satisfied ``|onnx - torch| <= atol * max(1, max|torch|)``.
    """

    max_abs_diff: float
    ok: bool


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(f"onnxruntime is needed to verify ONNX exports; install it with {_INSTALL_HINT}") from err
    return onnxruntime


def _run_torch(module: Any, x: np.ndarray) -> np.ndarray:
    """The module's eval-mode output on the CPU; the module itself is left as it was."""
    import torch

    on_cpu = all(p.device.type == "cpu" for p in module.parameters()) and all(
        b.device.type == "cpu" for b in module.buffers())
    runner = module if on_cpu else copy.deepcopy(module).cpu()
    was_training = runner.training
    runner.eval()
    try:
        with torch.no_grad():
            return runner(torch.from_numpy(x)).float().numpy()
    finally:
        runner.train(was_training)


def _run_onnxruntime(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {input_name: x})[0])


def compare_with_onnxruntime(model: onnx.ModelProto, module: Any, input_shape: Sequence[int], *, batch: int = 2,
                             seed: int = 0, atol: float = 1e-4) -> VerifyResult:
    """Run ``module`` (eval mode, CPU) and ``model`` (ONNX Runtime, CPU) on one random input and compare.

    Args:
        model: the exported model (input ``input``, one output).
        module: the torch module it was exported from.
        input_shape: per-sample input shape, without the batch dim.
        batch: batch size of the random input.
        seed: seed of the input's random generator.
        atol: tolerance relative to the output's scale: every element must satisfy
            ``|onnx - torch| <= atol * max(1, max|torch|)``. Float32 rounding grows with the largest activations
            (a deep net with logits near 300 is already 3e-5 away from its own float64 result), so a small logit
            next to a large one cannot be held to 1e-4 absolute.

    Raises:
        ImportError: onnxruntime is not installed.
    """
    _import_onnxruntime()  # fail fast, before running torch
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *input_shape), dtype=np.float32)
    expected = _run_torch(module, x)
    actual = _run_onnxruntime(model, x)
    if expected.shape != actual.shape:
        return VerifyResult(max_abs_diff=float("inf"), ok=False)
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    tolerance = atol * max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
    max_abs_diff = float(diff.max()) if diff.size else 0.0
    return VerifyResult(max_abs_diff=max_abs_diff, ok=bool(np.all(diff <= tolerance)))
