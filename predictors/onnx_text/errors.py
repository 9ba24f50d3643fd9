"""The one error of the ONNX text encoder."""


class OnnxTextError(ValueError):
    """A model could not be encoded: not an ONNX model, a missing file, or a graph that is not a valid DAG."""
