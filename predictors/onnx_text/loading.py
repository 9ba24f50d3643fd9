"""Loading: a path, serialized bytes or a ``ModelProto`` as an ``onnx.ModelProto``, with errors that say why not."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from predictors.onnx_text.errors import OnnxTextError

#: A model as the functions of this package accept it.
ModelLike = str | os.PathLike | bytes | bytearray | memoryview | onnx.ModelProto


def load_model(model: ModelLike) -> onnx.ModelProto:
    """Return ``model`` as an ``onnx.ModelProto``: a file path, the serialized bytes, or a ModelProto as is.

    Raises :class:`OnnxTextError` for a missing file, bytes that are not an ONNX model, a model without a graph
    or without nodes, and any other type of argument.
    """
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, (bytes, bytearray, memoryview)):
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(bytes(model))
        except Exception as exc:  # noqa: BLE001 - google.protobuf.message.DecodeError and friends
            raise OnnxTextError(f"not an ONNX model: {len(model)} bytes do not parse as a ModelProto "
                                f"({type(exc).__name__}: {exc})") from None
        if not proto.HasField("graph"):
            raise OnnxTextError(f"not an ONNX model: {len(model)} bytes parse to a ModelProto without a graph")
    elif isinstance(model, (str, os.PathLike)):
        path = Path(os.fspath(model))
        if not path.exists():
            raise OnnxTextError(f"ONNX file not found: {path}")
        if not path.is_file():
            raise OnnxTextError(f"not an ONNX model: {path} is not a file")
        try:
            proto = onnx.load(os.fspath(path))
        except Exception as exc:  # noqa: BLE001 - whatever onnx.load raises on a corrupt file
            raise OnnxTextError(f"not an ONNX model: {path} ({type(exc).__name__}: {exc})") from None
        if not proto.HasField("graph"):
            raise OnnxTextError(f"not an ONNX model: {path} parses to a ModelProto without a graph")
    else:
        raise OnnxTextError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
    if not proto.HasField("graph"):
        raise OnnxTextError("ONNX model has no graph")
    if len(proto.graph.node) == 0:
        raise OnnxTextError("ONNX model's graph has no nodes")
    return proto
