"""The torch compiler and the direct ONNX emitter agree with each other and with the op catalogue.

Each case is a small hand-built graph. For each: torch's parameter count and FlopCounterMode FLOPs equal the
graph's; the emitted ONNX passes the full checker; ONNX Runtime matches torch at batch 1 and 3; metadata survives.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.compile.torch import GraphModule, compile_graph
from nas.export.onnx import OnnxLoadError, export_onnx, export_onnx_dynamo, load_onnx, save_onnx
from nas.export.verify import VerifyResult, compare_with_onnxruntime
from nas.ir.graph import ArchGraph, Value, add_classifier_head
from nas.ir.ops import OPS

META = {"space": "test", "derivation": "hand-built"}
CASES: dict[str, Callable[[], ArchGraph]] = {}


def case(name: str) -> Callable[[Callable[[], ArchGraph]], Callable[[], ArchGraph]]:
    def register(builder: Callable[[], ArchGraph]) -> Callable[[], ArchGraph]:
        CASES[name] = builder
        return builder

    return register


def one(g: ArchGraph, op: str, attrs: dict, inputs: list[Value]) -> Value:
    (v,) = g.add_op(op, attrs, inputs)
    return v


def finish(g: ArchGraph, v: Value, feature_axis: int = -1, classes: int = 5) -> ArchGraph:
    g.set_output(add_classifier_head(g, v, feature_axis % len(v.shape), classes))
    return g


# --- cases --------------------------------------------------------------------------------------------------------


@case("readme_example")
def _readme() -> ArchGraph:
    g = ArchGraph((3, 8, 8))
    x = one(g, "im2col", {"kernel": 3, "stride": 1, "padding": 1}, [g.input])
    x = one(g, "linear", {"in_features": 27, "out_features": 16}, [x])
    x = one(g, "col2im", {"height": 8, "width": 8}, [x])
    a, b = g.add_op("split", {"dim": 0, "k": 2}, [x])
    y = one(g, "add", {}, [a, a])
    z = one(g, "concat", {"dim": 0}, [y, b])
    return finish(g, z, 0, 10)


def _im2col_case(k: int, s: int, p: int) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph((3, 32, 32))
        x = one(g, "im2col", {"kernel": k, "stride": s, "padding": p}, [g.input])
        x = one(g, "linear", {"in_features": 3 * k * k, "out_features": 8}, [x])
        return finish(g, x)

    return build


for _k, _s, _p in [(1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1), (4, 4, 0), (8, 8, 0), (16, 16, 0), (3, 3, 0)]:
    case(f"im2col_k{_k}_s{_s}_p{_p}")(_im2col_case(_k, _s, _p))


@case("im2col_col2im_image")
def _image_roundtrip() -> ArchGraph:
    g = ArchGraph((3, 12, 10))
    x = one(g, "im2col", {"kernel": 2, "stride": 2, "padding": 0}, [g.input])  # (30, 12)
    x = one(g, "pos_enc", {"shape": (30, 12)}, [x])
    x = one(g, "col2im", {"height": 6, "width": 5}, [x])  # (12, 6, 5)
    x = one(g, "batchnorm", {"num_features": 12}, [x])
    x = one(g, "leaky_relu", {}, [x])
    return finish(g, x, 0)


# einspace's "same" padding for conv1d: kernel 8 -> (3, 4), 5 -> (2, 2), 3 -> (1, 1), 1 -> (0, 0).
CONV_PADS = {1: (0, 0), 3: (1, 1), 5: (2, 2), 8: (3, 4)}


def _conv1d_case(kernel: int) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph((4, 20))
        left, right = CONV_PADS[kernel]
        x = one(g, "conv1d", {"in_channels": 4, "out_channels": 6, "kernel": kernel, "pad_left": left,
                              "pad_right": right}, [g.input])
        x = one(g, "batchnorm", {"num_features": 6}, [x])
        x = one(g, "leaky_relu", {}, [x])
        return finish(g, x, 0)

    return build


for _kernel in CONV_PADS:
    case(f"conv1d_k{_kernel}")(_conv1d_case(_kernel))


@case("conv1d_valid_and_permute")
def _conv_valid() -> ArchGraph:
    g = ArchGraph((3, 16))
    x = one(g, "conv1d", {"in_channels": 3, "out_channels": 5, "kernel": 4, "pad_left": 0, "pad_right": 0},
            [g.input])  # (5, 13)
    x = one(g, "permute", {"perm": (1, 0)}, [x])  # (13, 5)
    x = one(g, "layernorm", {"dim": 5}, [x])
    return finish(g, x)


@case("attention_tokens")
def _attention() -> ArchGraph:
    g = ArchGraph((6, 8))
    x = one(g, "pos_enc", {"shape": (6, 8)}, [g.input])
    x = one(g, "layernorm", {"dim": 8}, [x])
    qkv = one(g, "linear", {"in_features": 8, "out_features": 24}, [x])
    q, k, v = g.add_op("split", {"dim": 1, "k": 3}, [qkv])
    kt = one(g, "permute", {"perm": (1, 0)}, [k])
    att = one(g, "matmul", {"scale": 8 ** -0.5}, [q, kt])
    att = one(g, "softmax", {}, [att])
    y = one(g, "matmul", {"scale": 1.0}, [att, v])
    y = one(g, "add", {}, [y, x])
    return finish(g, y)


@case("multihead_rank3_matmul")
def _multihead() -> ArchGraph:
    g = ArchGraph((2, 5, 4))  # (heads, S, D)
    kt = one(g, "permute", {"perm": (0, 2, 1)}, [g.input])  # (2, 4, 5)
    att = one(g, "matmul", {"scale": 0.5}, [g.input, kt])  # (2, 5, 5)
    att = one(g, "softmax", {}, [att])
    y = one(g, "matmul", {"scale": 1.0}, [att, g.input])  # (2, 5, 4)
    y = one(g, "permute", {"perm": (1, 0, 2)}, [y])  # (5, 2, 4)
    return finish(g, y)


@case("same_value_twice_square")
def _twice() -> ArchGraph:
    g = ArchGraph((7, 7))
    x = one(g, "add", {}, [g.input, g.input])
    y = one(g, "matmul", {"scale": 1.0}, [x, x])
    z = one(g, "add", {}, [y, x, y])  # three inputs, one repeated
    return finish(g, z)


@case("split_partial_use")
def _split_partial() -> ArchGraph:
    g = ArchGraph((8, 6))
    parts = g.add_op("split", {"dim": 0, "k": 4}, [g.input])  # four (2, 6); only ports 1 and 3 read
    y = one(g, "concat", {"dim": 0}, [parts[3], parts[1]])  # (4, 6)
    return finish(g, y)


def _split_case(shape: tuple[int, ...], dim: int) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph(shape)
        parts = g.add_op("split", {"dim": dim, "k": 2}, [g.input])
        y = one(g, "concat", {"dim": dim}, [parts[1], parts[0]])  # swap halves: order matters
        y = one(g, "concat", {"dim": dim}, [y, g.input, y])
        return finish(g, y)

    return build


for _dim in range(3):
    case(f"split_concat_image_dim{_dim}")(_split_case((4, 6, 8), _dim))
for _dim in range(2):
    case(f"split_concat_tokens_dim{_dim}")(_split_case((6, 4), _dim))


@case("permutes_rank3")
def _permutes3() -> ArchGraph:
    g = ArchGraph((2, 3, 4))
    x = one(g, "permute", {"perm": (2, 0, 1)}, [g.input])  # (4, 2, 3)
    x = one(g, "permute", {"perm": (0, 2, 1)}, [x])  # (4, 3, 2)
    x = one(g, "batchnorm", {"num_features": 4}, [x])
    return finish(g, x, 0)


@case("pool_axes")
def _pool() -> ArchGraph:
    g = ArchGraph((4, 6, 5))
    x = one(g, "global_avg_pool", {"axes": (2,)}, [g.input])  # (4, 6)
    x = one(g, "softmax", {}, [x])
    x = one(g, "global_avg_pool", {"axes": (0,)}, [x])  # (6,)
    x = one(g, "linear", {"in_features": 6, "out_features": 3}, [x])
    g.set_output(x)
    return g


@case("pool_all_but_channels_after_linear_image")
def _image_linear() -> ArchGraph:
    g = ArchGraph((3, 4, 5))
    x = one(g, "linear", {"in_features": 5, "out_features": 7}, [g.input])  # over the last dim of an image
    x = one(g, "layernorm", {"dim": 7}, [x])
    return finish(g, x, 1)


# --- image / NAS-Bench-201 ops -------------------------------------------------------------------------------------

CONV_IMAGE = (4, 9, 8)  # odd, non-square: a swapped H/W or a ceil-mode pool would change the shapes


def _conv2d_case(k: int, s: int, p: int, depthwise: bool, bias: bool) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph(CONV_IMAGE)
        channels = CONV_IMAGE[0]
        attrs = {"in_channels": channels, "out_channels": channels if depthwise else 6, "kernel": k, "stride": s,
                 "padding": p, "groups": channels if depthwise else 1, "bias": bias}
        x = one(g, "conv2d", attrs, [g.input])
        return finish(g, x, 0)

    return build


for _k in (1, 3, 5):
    for _s in (1, 2):
        for _p in sorted({_k // 2, 0}):
            for _dw in (False, True):
                for _bias in (True, False):
                    case(f"conv2d_k{_k}_s{_s}_p{_p}_{'dw' if _dw else 'g1'}_{'bias' if _bias else 'nobias'}")(
                        _conv2d_case(_k, _s, _p, _dw, _bias))


@case("conv2d_grouped_and_multiplier")
def _conv2d_groups() -> ArchGraph:
    g = ArchGraph(CONV_IMAGE)
    x = one(g, "conv2d", {"in_channels": 4, "out_channels": 6, "kernel": 3, "stride": 1, "padding": 1, "groups": 2,
                          "bias": True}, [g.input])  # (6, 9, 8)
    x = one(g, "conv2d", {"in_channels": 6, "out_channels": 12, "kernel": 3, "stride": 2, "padding": 1, "groups": 6,
                          "bias": False}, [x])  # depthwise, channel multiplier 2: (12, 5, 4)
    return finish(g, x, 0)


# (kernel, stride, padding, count_include_pad); rank 3 = 2-D pooling, rank 2 = 1-D pooling
POOLS = {
    "avg_pool": [((4, 9, 8), 3, 1, 1, False),  # NAS-Bench-201's avg_pool_3x3
                 ((4, 9, 8), 3, 1, 1, True),
                 ((4, 9, 8), 2, 2, 0, True),  # NAS-Bench-201's residual shortcut
                 ((4, 9, 8), 3, 2, 1, False),
                 ((4, 11), 2, 2, 0, True),
                 ((4, 11), 3, 2, 1, False),
                 ((4, 11), 3, 1, 1, True)],
    "max_pool": [((4, 9, 8), 3, 1, 1, None),
                 ((4, 9, 8), 2, 2, 0, None),
                 ((4, 9, 8), 3, 2, 1, None),
                 ((4, 11), 2, 2, 0, None),
                 ((4, 11), 3, 2, 1, None)],
}


def _pool_case(op: str, shape: tuple[int, ...], k: int, s: int, p: int, cip: bool | None) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph(shape)
        attrs = {"kernel": k, "stride": s, "padding": p}
        if cip is not None:
            attrs["count_include_pad"] = cip
        x = one(g, op, attrs, [g.input])
        return finish(g, one(g, "relu", {}, [x]), 0)  # relu: the head's mean must not undo the pooling

    return build


for _op, _pools in POOLS.items():
    for _shape, _k, _s, _p, _cip in _pools:
        _tag = "" if _cip is None else ("_incpad" if _cip else "_excpad")
        case(f"{_op}_{len(_shape) - 1}d_k{_k}_s{_s}_p{_p}{_tag}")(_pool_case(_op, _shape, _k, _s, _p, _cip))

ACTIVATIONS = ("relu", "hardswish", "mish", "gelu", "sigmoid", "leaky_relu")


def _activation_case(op: str) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph((4, 6, 5))
        x = one(g, "add", {}, [g.input] * 6)  # ~N(0, 36): reaches the saturated and linear regions
        x = one(g, op, {}, [x])  # rank 3
        x = one(g, "global_avg_pool", {"axes": (2,)}, [x])
        x = one(g, op, {}, [x])  # rank 2
        x = one(g, "global_avg_pool", {"axes": (1,)}, [x])
        x = one(g, op, {}, [x])  # rank 1
        g.set_output(one(g, "linear", {"in_features": 4, "out_features": 3}, [x]))
        return g

    return build


for _act in ACTIVATIONS:
    case(f"activation_{_act}")(_activation_case(_act))


@case("zero_plus_branch")
def _zero() -> ArchGraph:
    g = ArchGraph((4, 6, 5))
    z = one(g, "zero", {}, [g.input])
    y = one(g, "sigmoid", {}, [g.input])
    x = one(g, "add", {}, [z, y])
    return finish(g, x, 0)


def _norm_case(op: str, shape: tuple[int, ...], attrs: dict) -> Callable[[], ArchGraph]:
    def build() -> ArchGraph:
        g = ArchGraph(shape)
        x = one(g, "add", {}, [g.input] * 3)  # not already unit variance
        x = one(g, op, attrs, [x])
        x = one(g, "mish", {}, [x])  # the head's mean of a normalised value alone is constant
        return finish(g, x, 0)

    return build


for _shape in ((4, 6, 5), (4, 12)):
    for _affine in (True, False):
        case(f"instancenorm_{len(_shape) - 1}d_{'affine' if _affine else 'plain'}")(
            _norm_case("instancenorm", _shape, {"num_features": 4, "affine": _affine}))
    for _groups in (1, 2, 4):
        case(f"groupnorm_{len(_shape) - 1}d_g{_groups}")(
            _norm_case("groupnorm", _shape, {"num_groups": _groups, "num_channels": 4}))


def _relu_conv_bn(g: ArchGraph, x: Value, c_out: int, k: int, s: int) -> Value:
    x = one(g, "relu", {}, [x])
    x = one(g, "conv2d", {"in_channels": x.shape[0], "out_channels": c_out, "kernel": k, "stride": s,
                          "padding": k // 2, "groups": 1, "bias": False}, [x])
    return one(g, "batchnorm", {"num_features": c_out}, [x])


@case("nb201_cell_and_reduction")
def _nb201() -> ArchGraph:
    """A NAS-Bench-201 cell (4 nodes, all five ops) followed by its residual reduction block."""
    g = ArchGraph((4, 8, 8))
    n0 = g.input
    n1 = _relu_conv_bn(g, n0, 4, 3, 1)
    n2 = one(g, "add", {}, [one(g, "avg_pool", {"kernel": 3, "stride": 1, "padding": 1, "count_include_pad": False},
                                [n0]), _relu_conv_bn(g, n1, 4, 1, 1)])
    n3 = one(g, "add", {}, [one(g, "zero", {}, [n0]), n1, _relu_conv_bn(g, n2, 4, 3, 1)])
    # ResNet basic block with stride 2 and the avg_pool + 1x1 conv shortcut
    a = _relu_conv_bn(g, n3, 8, 3, 2)
    b = _relu_conv_bn(g, a, 8, 3, 1)
    sc = one(g, "avg_pool", {"kernel": 2, "stride": 2, "padding": 0, "count_include_pad": True}, [n3])
    sc = one(g, "conv2d", {"in_channels": 4, "out_channels": 8, "kernel": 1, "stride": 1, "padding": 0, "groups": 1,
                           "bias": False}, [sc])
    x = one(g, "add", {}, [sc, b])  # (8, 4, 4)
    x = one(g, "max_pool", {"kernel": 3, "stride": 2, "padding": 1}, [x])
    return finish(g, x, 0)


# --- helpers ------------------------------------------------------------------------------------------------------


def randomise(module: torch.nn.Module) -> None:
    """Give every parameter and BatchNorm statistic non-default values, so that the export must carry them."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)


def build(name: str) -> tuple[ArchGraph, GraphModule]:
    torch.manual_seed(0)
    graph = CASES[name]()
    graph.lint()
    module = compile_graph(graph)
    randomise(module)
    return graph, module


def torch_flops(module: GraphModule, shape: tuple[int, ...]) -> int:
    module.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.randn(1, *shape))
    return counter.get_total_flops()


# --- tests --------------------------------------------------------------------------------------------------------


def test_every_op_is_covered() -> None:
    used = set()
    for builder in CASES.values():
        used |= {data["op"] for _, data in builder().op_nodes()}
    assert used == set(OPS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_compile_and_export(name: str) -> None:
    graph, module = build(name)
    assert sum(p.numel() for p in module.parameters()) == graph.num_params()
    assert torch_flops(module, graph.input_shape) == graph.flops()

    model = export_onnx(graph, module, metadata=META)
    onnx.checker.check_model(model, full_check=True)
    assert {p.key: p.value for p in model.metadata_props} == META
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    for batch in (1, 3):
        result = compare_with_onnxruntime(model, module, graph.input_shape, batch=batch, seed=batch)
        assert result.ok, f"{name} batch {batch}: max |diff| {result.max_abs_diff}"


@pytest.mark.parametrize("name", ["readme_example", "attention_tokens", "conv1d_k8", "nb201_cell_and_reduction",
                                  "instancenorm_2d_affine", "groupnorm_1d_g2"])
def test_train_mode_and_backward(name: str) -> None:
    graph, module = build(name)
    module.train()
    out = module(torch.randn(4, *graph.input_shape))
    assert out.shape == (4, *graph.output_shape)
    out.square().mean().backward()
    assert all(p.grad is not None for p in module.parameters())


def test_export_is_deterministic_and_uses_eval_semantics() -> None:
    graph, module = build("im2col_col2im_image")
    module.train()
    first, second = export_onnx(graph, module), export_onnx(graph, module)
    assert first.SerializeToString() == second.SerializeToString()
    assert module.training  # exporting does not change the module's mode
    assert all(n.name.startswith("n") for n in first.graph.node)
    assert compare_with_onnxruntime(first, module, graph.input_shape).ok
    assert module.training  # nor does verifying


def test_dynamic_batch_dim_declared() -> None:
    graph, module = build("attention_tokens")
    model = export_onnx(graph, module)
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch"
    assert model.opset_import[0].version == 18


def test_deepcopy_is_independent() -> None:
    graph, module = build("attention_tokens")
    clone = copy.deepcopy(module)
    with torch.no_grad():
        for p in clone.parameters():
            p.zero_()
    x = torch.randn(2, *graph.input_shape)
    module.eval()
    clone.eval()
    assert not torch.allclose(module(x), clone(x))


def test_verify_reports_mismatch() -> None:
    graph, module = build("conv1d_k3")
    model = export_onnx(graph, module)
    with torch.no_grad():
        next(iter(module.parameters())).add_(1.0)
    result = compare_with_onnxruntime(model, module, graph.input_shape)
    assert isinstance(result, VerifyResult)
    assert not result.ok and result.max_abs_diff > 1e-3


def test_save_load_roundtrip(tmp_path) -> None:
    graph, module = build("readme_example")
    model = export_onnx(graph, module, metadata=META)
    path = save_onnx(model, tmp_path / "sub" / "model.onnx")
    loaded = load_onnx(path)
    assert {p.key: p.value for p in loaded.metadata_props} == META
    assert compare_with_onnxruntime(loaded, module, graph.input_shape).ok


@pytest.mark.parametrize("content", [b"\x08\x07garbage\xff\xff\xff", b"", b"hello, not onnx at all"])
def test_load_corrupt_file(tmp_path, content: bytes) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(OnnxLoadError, match="broken.onnx"):
        load_onnx(path)


def test_load_missing_file(tmp_path) -> None:
    path = tmp_path / "missing.onnx"
    with pytest.raises(OnnxLoadError, match="missing.onnx"):
        load_onnx(path)
    assert issubclass(OnnxLoadError, ValueError)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_module_exports() -> None:
    graph, module = build("attention_tokens")
    module = module.to("cuda")
    for train in (True, False):
        module.train(train)
        out = module(torch.randn(3, *graph.input_shape, device="cuda"))
        assert out.device.type == "cuda"
    model = export_onnx(graph, module)
    assert compare_with_onnxruntime(model, module, graph.input_shape).ok
    assert next(module.parameters()).device.type == "cuda"


def test_dynamo_exporter_runs(tmp_path) -> None:
    pytest.importorskip("onnxscript")
    graph, module = build("readme_example")
    path = tmp_path / "dynamo.onnx"
    export_onnx_dynamo(module, graph.input_shape, path)
    model = onnx.load(path)
    result = compare_with_onnxruntime(model, module, graph.input_shape, batch=3)
    assert result.ok, result.max_abs_diff
    assert np.isfinite(result.max_abs_diff)


def test_identity_graph_with_dead_branch() -> None:
    g = ArchGraph((4, 6))
    one(g, "leaky_relu", {}, [g.input])  # read but never reaches the output
    g.set_output(g.input)
    module = compile_graph(g)
    model = export_onnx(g, module)
    onnx.checker.check_model(model, full_check=True)
    assert compare_with_onnxruntime(model, module, g.input_shape, batch=3).ok


def test_export_with_foreign_module_names_the_node() -> None:
    graph, _ = build("conv1d_k5")
    with pytest.raises(ValueError, match="node 1"):
        export_onnx(graph, torch.nn.Module())


@pytest.mark.parametrize("op, attrs, shape", [
    ("conv2d", {"in_channels": 4, "out_channels": 6, "kernel": 3, "stride": 1, "padding": 1, "groups": 1,
                "bias": True}, (3, 8, 8)),  # wrong channel count
    ("conv2d", {"in_channels": 4, "out_channels": 6, "kernel": 3, "stride": 1, "padding": 1, "groups": 4,
                "bias": True}, (4, 8, 8)),  # out_channels not divisible by groups
    ("conv2d", {"in_channels": 4, "out_channels": 4, "kernel": 5, "stride": 1, "padding": 0, "groups": 1,
                "bias": True}, (4, 4, 8)),  # kernel larger than the image
    ("conv2d", {"in_channels": 4, "out_channels": 4, "kernel": 1, "stride": 1, "padding": 0, "groups": 1,
                "bias": True}, (4, 8)),  # not an image
    ("avg_pool", {"kernel": 3, "stride": 1, "padding": 2, "count_include_pad": True}, (4, 8, 8)),  # pad > k/2
    ("max_pool", {"kernel": 3, "stride": 1, "padding": 0}, (4, 2)),  # window larger than the input
    ("max_pool", {"kernel": 2, "stride": 2, "padding": 0}, (8,)),  # rank 1
    ("instancenorm", {"num_features": 4, "affine": True}, (5, 8)),
    ("groupnorm", {"num_groups": 3, "num_channels": 4}, (4, 8)),
    ("groupnorm", {"num_groups": 2, "num_channels": 4}, (4, 2, 2, 2)),
])
def test_new_ops_reject_bad_shapes(op: str, attrs: dict, shape: tuple[int, ...]) -> None:
    from nas.ir.ops import ShapeError

    g = ArchGraph(shape)
    with pytest.raises(ShapeError):
        g.add_op(op, attrs, [g.input])


def test_pool_output_lengths_floor() -> None:
    g = ArchGraph((3, 9, 8))
    (x,) = g.add_op("avg_pool", {"kernel": 2, "stride": 2, "padding": 0, "count_include_pad": True}, [g.input])
    assert x.shape == (3, 4, 4)
    (y,) = g.add_op("max_pool", {"kernel": 3, "stride": 2, "padding": 1}, [g.input])
    assert y.shape == (3, 5, 4)
    (z,) = g.add_op("conv2d", {"in_channels": 3, "out_channels": 5, "kernel": 5, "stride": 2, "padding": 0,
                               "groups": 1, "bias": False}, [g.input])
    assert z.shape == (5, 3, 2)
    assert g.g.nodes[z.node]["params"] == 5 * 3 * 25


def test_deepcopy_with_image_ops() -> None:
    graph, module = build("nb201_cell_and_reduction")
    clone = copy.deepcopy(module)
    x = torch.randn(2, *graph.input_shape)
    module.eval()
    clone.eval()
    assert torch.equal(module(x), clone(x))
    assert all(isinstance(v, (int, float, bool, tuple, type(None))) for step in clone.plan for v in step.args)


def test_large_patch_im2col_on_uneven_image_exports_small() -> None:
    """kernel == stride on a size the kernel does not divide: crop + reshape, not a C*k^4 one-hot weight."""
    g = ArchGraph((64, 17, 19))
    (x,) = g.add_op("im2col", {"kernel": 16, "stride": 16, "padding": 0}, [g.input])
    g.set_output(add_classifier_head(g, x, 1, 3))
    torch.manual_seed(0)
    module = compile_graph(g).eval()
    model = export_onnx(g, module)
    assert model.ByteSize() < 200_000  # the one-hot Conv weight alone would be 64 * 16**4 floats = 16 MB
    assert compare_with_onnxruntime(model, module, (64, 17, 19)).ok
