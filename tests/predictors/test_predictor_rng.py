"""Training a predictor seeds its own heads and dropout and leaves the caller's global torch RNG as it was."""

from __future__ import annotations

import numpy as np
import torch

from predictors import OnnxNetPredictor
from predictors.onnx_net.predictor import PredictorConfig


def _rows() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(48, 6))
    return x, x[:, 0] + 0.1 * x[:, 1]


def test_fit_and_fine_tune_leave_the_global_torch_rng_alone_and_stay_reproducible() -> None:
    x, y = _rows()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = OnnxNetPredictor(PredictorConfig(ensemble=2, max_epochs=20)).fit_features(x, y)
    assert torch.equal(torch.get_rng_state(), before)
    first.fit_features(x, y, epochs=3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)  # another caller state: the fitted weights must not depend on it
    second = OnnxNetPredictor(PredictorConfig(ensemble=2, max_epochs=20)).fit_features(x, y)
    second.fit_features(x, y, epochs=3)
    np.testing.assert_array_equal(first.predict_features(x), second.predict_features(x))
