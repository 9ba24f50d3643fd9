"""Graph IR: canonical hash, parameter and FLOP counts against torch, lint."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.compile.torch import compile_graph
from nas.ir.build import build_graph
from nas.ir.graph import ArchGraph, GraphLintError, add_classifier_head
from nas.ir.ops import ShapeError


def _two_branch_graph(first_left: bool) -> ArchGraph:
    """The same architecture built in two creation orders (so node ids differ)."""
    g = ArchGraph((4, 8))
    x = g.input
    if first_left:
        (a,) = g.add_op("linear", {"in_features": 8, "out_features": 16}, [x])
        (b,) = g.add_op("leaky_relu", {}, [x])
    else:
        (b,) = g.add_op("leaky_relu", {}, [x])
        (a,) = g.add_op("linear", {"in_features": 8, "out_features": 16}, [x])
    (c,) = g.add_op("concat", {"dim": 1}, [a, b])
    g.set_output(add_classifier_head(g, c, 0, 3))
    return g


def test_hash_ignores_node_numbering() -> None:
    g1, g2 = _two_branch_graph(True), _two_branch_graph(False)
    assert [d["op"] for _, d in g1.op_nodes()] != [d["op"] for _, d in g2.op_nodes()]
    assert g1.canonical_hash() == g2.canonical_hash()


def test_hash_distinguishes_operand_order_and_attributes() -> None:
    g = ArchGraph((4, 8))
    (a,) = g.add_op("linear", {"in_features": 8, "out_features": 16}, [g.input])
    (b,) = g.add_op("leaky_relu", {}, [g.input])
    (c,) = g.add_op("concat", {"dim": 1}, [b, a])  # swapped operands: a different function
    g.set_output(add_classifier_head(g, c, 0, 3))
    assert g.canonical_hash() != _two_branch_graph(True).canonical_hash()
    h = ArchGraph((4, 8))
    (a,) = h.add_op("linear", {"in_features": 8, "out_features": 32}, [h.input])
    h.set_output(add_classifier_head(h, a, 0, 3))
    k = ArchGraph((4, 8))
    (a,) = k.add_op("linear", {"in_features": 8, "out_features": 16}, [k.input])
    k.set_output(add_classifier_head(k, a, 0, 3))
    assert h.canonical_hash() != k.canonical_hash()


def test_identical_derivations_hash_equal_and_distinct_ones_mostly_differ(spaces) -> None:
    space = spaces["image3x32x32"]
    hashes = {}
    for seed in range(150):
        d = space.sample(seed)
        digest = build_graph(space, d, 10).canonical_hash()
        assert build_graph(space, space.parse(str(d)), 10).canonical_hash() == digest
        hashes.setdefault(digest, set()).add(str(d))
    assert len(hashes) > 100


@pytest.mark.parametrize("label", ["image3x32x32", "image1x8x8", "sequence1x40"])
def test_params_and_flops_equal_torch(spaces, label: str) -> None:
    space = spaces[label]
    for seed in range(25):
        graph = build_graph(space, space.sample(seed), 10)
        module = compile_graph(graph).eval()
        assert sum(p.numel() for p in module.parameters()) == graph.num_params()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(torch.randn(1, *graph.input_shape))
        assert counter.get_total_flops() == graph.flops(), seed


def test_batchnorm_counts_affine_weights_not_running_stats() -> None:
    g = ArchGraph((5, 4, 4))
    (x,) = g.add_op("batchnorm", {"num_features": 5}, [g.input])
    g.set_output(add_classifier_head(g, x, 0, 2))
    assert g.num_params() == 10 + 12
    assert sum(p.numel() for p in compile_graph(g).parameters()) == 22


def test_shape_errors_are_raised_when_building() -> None:
    g = ArchGraph((3, 8, 8))
    with pytest.raises(ShapeError, match="linear expects last dim 7"):
        g.add_op("linear", {"in_features": 7, "out_features": 4}, [g.input])
    with pytest.raises(ShapeError, match="cannot split dim 0"):
        g.add_op("split", {"dim": 0, "k": 2}, [g.input])


def test_lint_catches_tampering() -> None:
    g = _two_branch_graph(True)
    g.lint()
    g.g.nodes[1]["out_shapes"] = ((4, 99),)
    with pytest.raises(GraphLintError, match="node 1"):
        g.lint()


def test_graph_prints_compactly() -> None:
    text = str(_two_branch_graph(True))
    assert "%3 = concat(%1, %2)[dim=1] -> 4x24" in text
