"""Known networks written as einspace derivation strings: they parse, compile, run and export faithfully."""

from __future__ import annotations

import onnx
import pytest
import torch

from nas.candidate import build_candidate
from nas.export.verify import compare_with_onnxruntime
from search_spaces.spaces import get_space

CONV3 = "(routing im2col[kernel=3,stride=1,padding=1] linear[width=64] col2im)"

RESNET_BLOCK = f"""
(sequential {CONV3}
  (branching clone[k=2]
    (sequential {CONV3} (sequential norm (sequential leaky_relu (sequential {CONV3} norm))))
    identity
    add))
"""

VIT_BLOCK = """
(routing im2col[kernel=4,stride=4,padding=0]
  (sequential linear[width=64]
    (sequential pos_enc
      (branching clone[k=2]
        (sequential norm
          (sequential
            (branching clone[k=2]
              (sequential
                (branching clone[k=2]
                  linear[width=64]
                  (routing identity linear[width=64] permute[order=(1,0)])
                  scaled_dot_product)
                softmax)
              linear[width=64]
              dot_product)
            linear[width=64]))
        identity
        add)))
  identity)
"""

MIXER_BLOCK = """
(routing im2col[kernel=4,stride=4,padding=0]
  (sequential linear[width=64]
    (sequential
      (branching clone[k=2]
        (sequential norm
          (routing permute[order=(1,0)] (sequential linear[width=128] (sequential leaky_relu linear[width=64]))
                   permute[order=(1,0)]))
        identity add)
      (branching clone[k=2]
        (sequential norm (sequential linear[width=256] (sequential leaky_relu linear[width=64])))
        identity add)))
  identity)
"""

BLOCKS = {"resnet": RESNET_BLOCK, "vit": VIT_BLOCK, "mixer": MIXER_BLOCK}


@pytest.mark.parametrize("name", BLOCKS)
def test_known_block_parses_compiles_runs_and_exports(name: str) -> None:
    space = get_space("einspace", (3, 32, 32))
    derivation = space.parse(BLOCKS[name])
    assert space.parse(str(derivation)).root == derivation.root
    torch.manual_seed(0)
    cand = build_candidate(space, derivation, num_classes=10)
    onnx.checker.check_model(cand.onnx_model, full_check=True)
    out = cand.module.eval()(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert compare_with_onnxruntime(cand.onnx_model, cand.module, (3, 32, 32), batch=3).ok
    meta = {p.key: p.value for p in cand.onnx_model.metadata_props}
    assert meta["derivation"] == str(derivation) and meta["hash"] == cand.hash and meta["space"] == "einspace"


def test_resnet_block_structure() -> None:
    space = get_space("einspace", (3, 32, 32))
    cand = build_candidate(space, space.parse(RESNET_BLOCK), 10)
    ops = cand.graph.op_histogram()
    assert ops["im2col"] == 3 and ops["add"] == 1 and ops["batchnorm"] == 2
    assert str(cand.derivation.output_type) == "image[64x32x32]"
    # conv3x3 3->64: 27*64+64; two conv3x3 64->64: 2*(576*64+64); two BN(64): 256; head 64*10+10
    assert cand.params == (27 * 64 + 64) + 2 * (576 * 64 + 64) + 256 + 650


def test_vit_block_structure() -> None:
    space = get_space("einspace", (3, 32, 32))
    cand = build_candidate(space, space.parse(VIT_BLOCK), 10)
    ops = cand.graph.op_histogram()
    assert ops["matmul"] == 2 and ops["softmax"] == 1 and ops["layernorm"] == 1 and ops["pos_enc"] == 1
    assert str(cand.derivation.output_type) == "token[64x64]"
    scaled = [d["attrs"]["scale"] for _, d in cand.graph.op_nodes() if d["op"] == "matmul"]
    assert sorted(scaled) == pytest.approx([1 / 8, 1.0])  # 1/sqrt(64) on Q K^T, plain product with V


def test_mixer_block_structure() -> None:
    space = get_space("einspace", (3, 32, 32))
    cand = build_candidate(space, space.parse(MIXER_BLOCK), 10)
    ops = cand.graph.op_histogram()
    assert ops["permute"] == 2 and ops["add"] == 2 and ops["layernorm"] == 2
    # token mixing runs along the 64 patches (LayerNorm then a transpose into channels-first signal mode)
    token_mlp = [d["attrs"] for _, d in cand.graph.op_nodes() if d["op"] == "linear"][1]
    assert token_mlp == {"in_features": 64, "out_features": 128}
