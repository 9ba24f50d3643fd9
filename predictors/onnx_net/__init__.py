"""The ONNX-Net-style text predictor: ONNX graph -> text -> embedding -> MLP head (see :mod:`.predictor`)."""

from predictors.onnx_net.encoders import (
    ENCODERS,
    HashedNgramEncoder,
    MiniLMEncoder,
    TextEncoder,
    TransformerLineEncoder,
    make_encoder,
)
from predictors.onnx_net.features import GlobalFeatures, global_features, graph_features
from predictors.onnx_net.predictor import (
    EncodedGraph,
    OnnxNetPredictor,
    PredictorConfig,
    PredictorError,
    SizeReference,
    TrainingSummary,
    encode_graph,
)

__all__ = ["ENCODERS", "EncodedGraph", "GlobalFeatures", "HashedNgramEncoder", "MiniLMEncoder", "OnnxNetPredictor",
           "PredictorConfig", "PredictorError", "SizeReference", "TextEncoder", "TrainingSummary",
           "TransformerLineEncoder", "encode_graph", "global_features", "graph_features", "make_encoder"]
