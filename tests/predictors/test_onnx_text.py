"""The ONNX -> text encoder (``predictors.onnx_text``): golden text, invariance to names and node order, every
attribute and edge kept, the compact variant, real exported candidates, clear errors, and its fast paths (the
incremental colours, the lazy tie-breaks, the wire-format copy for shape inference, the memoised texts) agreeing
with the plain algorithms."""

from __future__ import annotations

import ast
import heapq
import random
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import predictors.onnx_text as ot
from predictors.onnx_text import (
    GraphStats,
    OnnxTextError,
    analysis,
    encode_lines,
    encode_onnx,
    graph_stats,
    load_model,
    wire,
)
from predictors.onnx_text import order as ordering
from predictors.onnx_text.memo import Memo

OPSET = [helper.make_opsetid("", 17)]
CONV = "{dilations=[1,1],group=1,kernel_shape=[3,3],pads=[1,1,1,1],strides=[1,1]}"
BN8 = "BatchNormalization(Param[8], Param[8], Param[8], Param[8]){epsilon=1e-05,momentum=0.9}"


# --- hand-built graphs --------------------------------------------------------------------------------------------


class _Net:
    """A tiny graph builder: initializers from shapes, nodes from op names."""

    def __init__(self, in_shape: list, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)]
        self.count = 0

    def weight(self, *shape: int) -> str:
        name = f"w{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(self.rng.standard_normal(shape).astype(np.float32), name))
        return name

    def ints(self, values: list[int]) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def scalar(self, value: float) -> str:
        name = f"s{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        return name

    def op(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        self.count += 1
        outs = [f"t{self.count}_{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"node{self.count}", **attrs))
        return outs

    def conv_bn(self, x: str, cin: int, cout: int, k: int = 3, epsilon: float = 1e-5, bias: bool = False) -> str:
        w = [self.weight(cout, cin, k, k)] + ([self.weight(cout)] if bias else [])
        (y,) = self.op("Conv", [x, *w], kernel_shape=[k, k], pads=[k // 2] * 4, strides=[1, 1], dilations=[1, 1],
                       group=1)
        (y,) = self.op("BatchNormalization", [y, *(self.weight(cout) for _ in range(4))], epsilon=epsilon,
                       momentum=0.9)
        return y

    def model(self, outputs: list[tuple[str, list]]) -> onnx.ModelProto:
        outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs]
        graph = helper.make_graph(self.nodes, "g", self.inputs, outs, self.inits)
        return helper.make_model(graph, opset_imports=OPSET)


def small_net(epsilon: float = 1e-5) -> onnx.ModelProto:
    """Conv+BN+Relu stem, a Conv+BN branch added back, GlobalAveragePool, Flatten, Gemm(transB=1)."""
    n = _Net(["N", 3, 8, 8])
    (stem,) = n.op("Relu", [n.conv_bn("x", 3, 8, bias=True, epsilon=epsilon)])
    branch = n.conv_bn(stem, 8, 8, epsilon=epsilon)
    (s,) = n.op("Add", [stem, branch])
    (p,) = n.op("GlobalAveragePool", [s])
    (f,) = n.op("Flatten", [p], axis=1)
    (y,) = n.op("Gemm", [f, n.weight(10, 8), n.weight(10)], alpha=1.0, beta=1.0, transB=1)
    return n.model([(y, ["N", 10])])


def residual_blocks(count: int = 6) -> onnx.ModelProto:
    """A conv stem, then ``count`` identical blocks: 3x3 and 1x1 Conv-BN-Relu branches, summed, plus a skip."""
    n = _Net(["N", 3, 8, 8])
    (x,) = n.op("Relu", [n.conv_bn("x", 3, 8)])
    for _ in range(count):
        (a,) = n.op("Relu", [n.conv_bn(x, 8, 8, 3)])
        (b,) = n.op("Relu", [n.conv_bn(x, 8, 8, 1)])
        (s,) = n.op("Add", [a, b])
        (x,) = n.op("Add", [s, x])
    return n.model([(x, ["N", 8, 8, 8])])


def split_net() -> onnx.ModelProto:
    """Split into two halves, each continued by a chain starting from a value produced earlier, then Concat."""
    n = _Net(["N", 4, 6])
    (r,) = n.op("Relu", ["x"])
    a, b = n.op("Split", [r, n.ints([2, 2])], n_out=2, axis=1)
    (a,) = n.op("Sigmoid", [a])
    (a,) = n.op("Sub", [n.scalar(1.0), a])
    (b,) = n.op("Tanh", [b])
    (c,) = n.op("Concat", [a, b, r], axis=1)
    (y,) = n.op("Reshape", [c, n.ints([0, -1])])
    return n.model([(y, ["N", 48])])


GOLDEN = "\n".join([
    f"Conv(Input:?x3x8x8, Param[8,3,3,3], Param[8]){CONV} --> {BN8} --> Relu --> V1:?x8x8x8",
    f"Conv(V1, Param[8,8,3,3]){CONV} --> {BN8} --> V2:?x8x8x8",
    "Add(V1, V2) --> V3:?x8x8x8",
    "GlobalAveragePool(V3) --> Flatten{axis=1} --> Gemm(Param[10,8], Param[10]){alpha=1,beta=1,transB=1} --> V4:?x10",
    "Output(V4) --> ?x10",
])


def renamed(model: onnx.ModelProto, seed: int, shuffle: bool = True) -> onnx.ModelProto:
    """Rename every tensor, node and the graph; shuffle the node and initializer lists."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    rng = random.Random(seed)
    g = m.graph
    names = {n for node in g.node for n in [*node.input, *node.output] if n}
    names |= {t.name for t in g.initializer} | {v.name for v in [*g.input, *g.output, *g.value_info]}
    new = {old: f"T{rng.randrange(10 ** 9)}_{k}" for k, old in enumerate(sorted(names))}
    for node in g.node:
        node.input[:] = [new.get(x, x) for x in node.input]
        node.output[:] = [new.get(x, x) for x in node.output]
        node.name = f"N{rng.randrange(10 ** 9)}"
    for v in [*g.initializer, *g.input, *g.output, *g.value_info]:
        v.name = new[v.name]
    g.name = "renamed"
    if shuffle:
        nodes, inits = list(g.node), list(g.initializer)
        rng.shuffle(nodes)
        rng.shuffle(inits)
        del g.node[:]
        g.node.extend(nodes)
        del g.initializer[:]
        g.initializer.extend(inits)
    return m


def expand_compact(lines: list[str]) -> list[str]:
    """Undo the compact variant: expand ``n x [...]`` groups, turn relative ids back into ``V1, V2, ...``."""

    def expand(block: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(block):
            line = block[i]
            if m := re.fullmatch(r"(\d+) x \[(.+)\]", line):
                out += [m.group(2)] * int(m.group(1))
                i += 1
            elif m := re.fullmatch(r"(\d+) x \[", line):
                end = block.index("]", i)
                inner = expand([x[2:] for x in block[i + 1:end]])
                out += inner * int(m.group(1))
                i = end + 1
            else:
                out.append(line)
                i += 1
        return out

    absolute, defined = [], 0
    for line in expand(lines):
        text = re.sub(r"V-(\d+)", lambda m, d=defined: f"V{d + 1 - int(m.group(1))}", line)
        text = re.sub(r"V\+(\d+)", lambda m, d=defined: f"V{d + int(m.group(1))}", text)
        defined += len(re.findall(r"V\+\d+", line))
        absolute.append(text)
    return absolute


def assert_well_formed(lines: list[str]) -> None:
    """Every line's head names its input (V-id or Input) and every V-id is defined on an earlier line."""
    defined: set[str] = set()
    for line in lines:
        assert re.match(r"^[\w.]+\((V\d+|Input)", line), line
        refs = set(re.findall(r"\b(V\d+)\b(?!:)", line))
        assert refs <= defined, (line, refs - defined)
        defined |= set(re.findall(r"\b(V\d+):", line))


# --- tests --------------------------------------------------------------------------------------------------------


def test_golden_text() -> None:
    model = small_net()
    onnx.checker.check_model(model, full_check=True)
    assert encode_onnx(model) == GOLDEN
    assert encode_lines(model) == GOLDEN.split("\n")


def test_graph_stats() -> None:
    stats = graph_stats(small_net())
    assert isinstance(stats, GraphStats)
    assert stats.num_nodes == 9
    assert stats.depth == 9
    assert stats.num_params == 8 * 3 * 9 + 8 + 4 * 8 + 8 * 8 * 9 + 4 * 8 + 10 * 8 + 10
    assert stats.op_histogram == {"Add": 1, "BatchNormalization": 2, "Conv": 2, "Flatten": 1, "Gemm": 1,
                                  "GlobalAveragePool": 1, "Relu": 1}


@pytest.mark.parametrize("variant", ["chain", "compact"])
@pytest.mark.parametrize("build", [small_net, residual_blocks, split_net])
def test_invariant_to_names_and_node_order(build, variant: str) -> None:
    model = build()
    text = encode_onnx(model, variant=variant)
    for seed in range(4):
        assert encode_onnx(renamed(model, seed, shuffle=seed > 0), variant=variant) == text
    reverse = renamed(model, 9, shuffle=False)
    nodes = list(reverse.graph.node)[::-1]
    del reverse.graph.node[:]
    reverse.graph.node.extend(nodes)
    assert encode_onnx(reverse, variant=variant) == text
    for pattern in [r"[(,] ?x[,)]", r"\bt\d+_0\b", r"\b[wcs]\d+\b", r"\bnode\d+\b", r"\bg\b"]:
        assert not re.search(pattern, text)


def test_scalar_attributes_are_kept() -> None:
    text = encode_onnx(small_net())
    for attr in ["group=1", "axis=1", "epsilon=1e-05", "momentum=0.9", "transB=1", "alpha=1", "beta=1"]:
        assert attr in text
    other = encode_onnx(small_net(epsilon=1e-3))
    assert other != text and "epsilon=0.001" in other
    assert encode_onnx(split_net()).count("axis=1") == 2


def test_every_edge_is_kept() -> None:
    lines = encode_lines(split_net())
    assert lines == [
        "Relu(Input:?x4x6) --> V1:?x4x6",
        "Split(V1, Const[2,2]){axis=1} --> V2:?x2x6, V3:?x2x6",
        "Sigmoid(V2) --> Sub(Const(1), _) --> V4:?x2x6",
        "Tanh(V3) --> V5:?x2x6",
        "Concat(V4, V5, V1){axis=1} --> V6:?x8x6",
        "Reshape(V6, Const[0,-1]) --> V7:?x48",
        "Output(V7) --> ?x48",
    ]
    # the branch's chain start names the value it reads (produced two lines earlier and also used by Add)
    assert GOLDEN.split("\n")[1].startswith("Conv(V1, ")
    assert_well_formed(lines)
    assert_well_formed(GOLDEN.split("\n")[:-1] + ["Output(V4) --> ?x10"])


def test_constant_nodes_are_folded() -> None:
    n = _Net(["N", 2, 3])
    shape = helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([0, 6], np.int64)))
    half = helper.make_node("Constant", [], ["half"], value_float=0.5)
    big = helper.make_node("Constant", [], ["big"], value=numpy_helper.from_array(np.ones((6, 4), np.float32)))
    n.nodes += [shape, half, big]
    (r,) = n.op("Reshape", ["x", "shape"])
    (m,) = n.op("Mul", [r, "half"])
    (y,) = n.op("MatMul", [m, "big"])
    model = n.model([(y, ["N", 4])])
    assert encode_lines(model) == [("Reshape(Input:?x2x3, Const[0,6]) --> Mul(Const(0.5)) --> MatMul(Param[6,4]) "
                                    "--> V1:?x4"), "Output(V1) --> ?x4"]
    assert graph_stats(model).num_nodes == 3 and graph_stats(model).num_params == 24


def test_compact_variant() -> None:
    model = residual_blocks(6)
    chain = encode_lines(model)
    compact = encode_lines(model, variant="compact")
    assert len(chain) == 1 + 6 * 4 + 1
    assert len(compact) <= len(chain) // 3
    assert compact[1] == "6 x [" and compact[-2] == "]" and compact[-1] == "Output(V-1) --> ?x8x8x8"
    assert encode_lines(model, variant="compact") == compact
    assert encode_lines(renamed(model, 3), variant="compact") == compact
    assert expand_compact(compact) == chain
    assert sum(map(len, compact)) < sum(map(len, chain)) / 3
    # a single repeated line collapses onto one line
    n = _Net(["N", 4])
    x = "x"
    for _ in range(5):
        (x,) = n.op("Add", [x, x])
    lines = encode_lines(n.model([(x, ["N", 4])]), variant="compact")
    assert lines == ["Add(Input:?x4, Input:?x4) --> V+1:?x4", "4 x [Add(V-1, V-1) --> V+1:?x4]",
                     "Output(V-1) --> ?x4"]
    assert expand_compact(lines) == encode_lines(n.model([(x, ["N", 4])]))
    with pytest.raises(ValueError, match="variant"):
        encode_onnx(model, variant="tokens")


@pytest.fixture(scope="module")
def nb201_model() -> onnx.ModelProto:
    from nas.candidate import build_candidate
    from search_spaces import get_space

    space = get_space("nb201", (1, 8, 8))
    return build_candidate(space, space.sample(0), 10).onnx_model


def test_exported_candidate(nb201_model: onnx.ModelProto, tmp_path) -> None:
    text = encode_onnx(nb201_model)
    lines = text.split("\n")
    assert lines[0].startswith("Conv(Input:?x1x8x8, Param[16,1,3,3]){dilations=[1,1],group=1,")
    assert lines[-1] == "Output(V{}) --> ?x10".format(len(re.findall(r"\bV\d+:", text)))
    assert_well_formed(lines[:-1])
    assert "epsilon=1e-05" in text
    path = tmp_path / "cand.onnx"
    onnx.save(nb201_model, path)
    assert encode_onnx(nb201_model.SerializeToString()) == text
    assert encode_onnx(path) == text and encode_onnx(str(path)) == text
    compact = encode_lines(path, variant="compact")
    assert len(compact) < len(lines) / 2
    assert expand_compact(compact) == lines
    assert encode_onnx(renamed(nb201_model, 1)) == text
    stats = graph_stats(path)
    assert stats.num_nodes == len(nb201_model.graph.node) and stats.op_histogram["Conv"] > 0


def test_nb_macro_candidate() -> None:
    from nas.candidate import build_candidate
    from search_spaces import get_space

    space = get_space("nb-macro", (3, 16, 16))
    model = build_candidate(space, space.from_arch("02012100"), 10).onnx_model
    lines = encode_lines(model)
    assert_well_formed(lines[:-1])
    assert "group=" in lines[1] and lines[-1].endswith("?x10")


def test_without_shape_inference(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("inference failed")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", broken)
    lines = encode_lines(small_net())
    assert lines[0].startswith("Conv(Input:?x3x8x8, ") and lines[0].endswith("--> V1:*")
    assert lines[-1] == "Output(V4) --> ?x10"


def test_unknown_ops_have_unknown_shapes() -> None:
    n = _Net(["N", 4])
    (y,) = n.op("Relu", ["x"])
    n.nodes.append(helper.make_node("Mystery", [y], ["z"], domain="my.ops", level=2))
    model = n.model([("z", ["N", 4])])
    model.opset_import.append(helper.make_opsetid("my.ops", 1))
    assert encode_lines(model) == ["Relu(Input:?x4) --> my.ops.Mystery{level=2} --> V1:?x4", "Output(V1) --> ?x4"]


def test_errors(tmp_path) -> None:
    junk = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    with pytest.raises(OnnxTextError, match="ONNX"):
        encode_onnx(junk)
    (tmp_path / "junk.onnx").write_bytes(junk)
    with pytest.raises(OnnxTextError, match="ONNX"):
        encode_onnx(tmp_path / "junk.onnx")
    missing = tmp_path / "nope" / "missing.onnx"
    with pytest.raises(OnnxTextError, match=re.escape(str(missing))):
        encode_onnx(missing)
    with pytest.raises(OnnxTextError, match="path, bytes or onnx.ModelProto"):
        encode_onnx(12345)
    with pytest.raises(OnnxTextError, match="no nodes"):
        encode_onnx(helper.make_model(helper.make_graph([], "empty", [], [])))
    with pytest.raises(OnnxTextError, match="no graph"):
        load_model(onnx.ModelProto())

    undefined = small_net()
    undefined.graph.node[2].input[0] = "ghost"
    with pytest.raises(OnnxTextError, match="ghost"):
        encode_onnx(undefined)

    n = _Net(["N", 4])
    n.nodes.append(helper.make_node("Add", ["x", "b"], ["a"]))
    n.nodes.append(helper.make_node("Relu", ["a"], ["b"]))
    with pytest.raises(OnnxTextError, match="not a DAG"):
        encode_onnx(n.model([("b", ["N", 4])]))

    # a cycle after tied siblings (their colours and hashes are computed before the cycle stops the order)
    n = _Net(["N", 4])
    (a,) = n.op("Relu", ["x"])
    (b,) = n.op("Relu", ["x"])
    n.nodes.append(helper.make_node("Add", [a, "d"], ["c"]))
    n.nodes.append(helper.make_node("Neg", ["c"], ["d"]))
    n.nodes.append(helper.make_node("Add", [b, "x"], ["e"]))
    with pytest.raises(OnnxTextError, match=re.escape("2 nodes lie on or after a cycle (ops: Add, Neg)")):
        encode_onnx(n.model([("e", ["N", 4])]))

    twice = small_net()
    twice.graph.node[1].output[0] = twice.graph.node[0].output[0]
    with pytest.raises(OnnxTextError, match="defined twice"):
        encode_onnx(twice)


# --- the fast paths agree with the plain algorithms ---------------------------------------------------------------


def _reference_ranks(gr) -> list[int]:
    """Weisfeiler-Lehman colours computed plainly: every node's signature, every round (rule 4)."""
    label_rank = {lab: r for r, lab in enumerate(sorted(set(gr.labels)))}
    colour = [label_rank[lab] for lab in gr.labels]
    for _ in range(ordering.DOWNSTREAM_HOPS):
        sigs = [(colour[i], tuple((gr.output_ports[i][p], tuple(sorted((s, colour[c]) for c, s in port)))
                                  for p, port in enumerate(gr.consumers[i])))
                for i in range(len(gr.nodes))]
        rank = {sig: r for r, sig in enumerate(sorted(set(sigs)))}
        colour = [rank[sig] for sig in sigs]
    return colour


def _reference_order(gr) -> list[int]:
    """Kahn's algorithm with the whole key of every ready node (colour and hash included) on the heap."""
    topo = analysis.file_topo_order(gr)
    colour, whole, succ = _reference_ranks(gr), ordering.downstream_hashes(gr, topo), ordering.chain_successors(gr)
    n = len(gr.nodes)
    indeg = [sum(1 for a in gr.args[i] if a[0] == "v") for i in range(n)]
    step, done, heap, order, forced = [0] * n, [False] * n, [], [], None

    def push(i: int) -> None:
        refs = [(2, step[a[1]], a[2]) if a[0] == "v" else (1, a[1], 0) if a[0] == "i" else (0, 0, 0)
                for a in gr.args[i]]
        latest = max([-2] + [step[a[1]] for a in gr.args[i] if a[0] == "v"] + [-1 for a in gr.args[i] if a[0] == "i"])
        heapq.heappush(heap, (-latest, gr.labels[i], tuple(refs), colour[i], whole[i], i))

    for i in range(n):
        if indeg[i] == 0:
            push(i)
    while len(order) < n:
        if forced is not None:
            i, forced = forced, None
        else:
            i = heapq.heappop(heap)[-1]
            while done[i]:
                i = heapq.heappop(heap)[-1]
        done[i], step[i] = True, len(order)
        order.append(i)
        for port in gr.consumers[i]:
            for c, _ in port:
                indeg[c] -= 1
                if indeg[c] == 0:
                    push(c)
        forced = succ[i]
    return order


def random_dag(seed: int) -> onnx.ModelProto:
    """A random graph rich in ties: sibling ops on one input, twin chains that differ only beyond the colours'
    reach, identical twins, two-output Splits, Concats, and graph outputs in the middle."""
    rng = random.Random(seed)
    n = _Net(["N", 4])
    values = ["x"]
    for _ in range(rng.randrange(5, 25)):
        kind = rng.random()
        src = rng.choice(values[-6:])
        if kind < 0.35:   # siblings: the same op on the same value, one to three times
            op = rng.choice(["Relu", "Sigmoid", "Tanh"])
            for _ in range(rng.choice([1, 2, 2, 3])):
                values += n.op(op, [src])
        elif kind < 0.45:  # twin chains longer than the colours' reach, ending alike or not
            ends = rng.choice([("Relu", "Relu"), ("Sigmoid", "Tanh")])
            for end in ends:
                (y,) = n.op("Abs", [src])
                for _ in range(ordering.DOWNSTREAM_HOPS + 1):
                    (y,) = n.op("Neg", [y])
                values += n.op(end, [y])
        elif kind < 0.7:
            values += n.op(rng.choice(["Add", "Mul", "Sub"]), [src, rng.choice(values[-8:])])
        elif kind < 0.85:
            values += n.op("Split", [src], n_out=2, axis=1)
        else:
            values += n.op("Concat", rng.sample(values[-6:], min(3, len(values[-6:]))), axis=1)
    outputs = [values[-1]] + rng.sample(values[1:], min(2, len(values) - 1))
    return n.model([(name, ["N", 4]) for name in dict.fromkeys(outputs)])


@pytest.mark.parametrize("seed", range(40))
def test_canonical_order_matches_plain_algorithm(seed: int) -> None:
    gr = analysis.analyse(random_dag(seed))
    assert ordering.downstream_ranks(gr) == _reference_ranks(gr)
    assert ordering.canonical_order(gr)[0] == _reference_order(gr)


def _reference_light_model(model: onnx.ModelProto, gr, order: list[int]) -> onnx.ModelProto:
    """The weight-free copy for shape inference, built with the protobuf API."""
    g = model.graph
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    lg = light.graph
    lg.node.extend(node for node in g.node if node.op_type == "Constant" and node.domain in ("", "ai.onnx"))
    lg.node.extend(gr.nodes[i] for i in order)
    lg.input.extend(g.input)
    lg.output.extend(g.output)
    lg.value_info.extend(g.value_info)
    for t in g.initializer:
        if int(np.prod(t.dims)) <= wire.INFER_KEEP_ELEMENTS:
            lg.initializer.append(t)
        else:
            lg.initializer.add(name=t.name, data_type=t.data_type, dims=t.dims)
    return light


def big_attribute_net() -> onnx.ModelProto:
    """Nodes serializing to more than 2 KiB and 16 KiB (longer length varints), a Constant node and value_info."""
    n = _Net(["N", 4])
    n.nodes.append(helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones(4, np.float32))))
    (y,) = n.op("Mul", ["x", "k"])
    (y,) = n.op("Mystery", [y], note="a" * 3000)
    (y,) = n.op("Mystery", [y], note="b" * 20000)
    (y,) = n.op("Relu", [y])
    model = n.model([(y, ["N", 4])])
    model.graph.value_info.append(helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", 4]))
    return model


@pytest.mark.parametrize("build", [small_net, residual_blocks, split_net, big_attribute_net,
                                   lambda: random_dag(7)])
def test_light_model_is_the_weight_free_copy(build) -> None:
    model = build()
    gr = analysis.analyse(model)
    order = ordering.canonical_order(gr)[0]
    light = onnx.ModelProto.FromString(wire.light_model(model, gr, order, Memo()))
    assert light == _reference_light_model(model, gr, order)


def test_memoised_texts_follow_content() -> None:
    def net(shape: list[int], pads: int, epsilon: float) -> onnx.ModelProto:
        n = _Net(["N", 3, 8, 8])
        (y,) = n.op("Relu", [n.conv_bn("x", 3, 8, epsilon=epsilon)])
        n.inits.append(numpy_helper.from_array(np.asarray(shape, np.int64), "shape"))  # same name, other value
        (y,) = n.op("Reshape", [y, "shape"])
        (y,) = n.op("MaxPool", [y], kernel_shape=[3, 3], pads=[pads] * 4)
        return n.model([(y, ["N", 8, 8, 8])])

    encoder = ot.OnnxTextEncoder()  # one encoder: its memo tables see all three nets
    first = encoder.encode_lines(net([0, 8, 8, 8], 1, 1e-5))
    assert "Reshape(Const[0,8,8,8])" in first[0] and "pads=[1,1,1,1]" in first[0] and "epsilon=1e-05" in first[0]
    assert encoder.memo.size > 0
    other = encoder.encode_lines(net([0, 8, 64, 1], 0, 1e-3))
    assert "Reshape(Const[0,8,64,1])" in other[0] and "pads=[0,0,0,0]" in other[0] and "epsilon=0.001" in other[0]
    assert encoder.encode_lines(net([0, 8, 8, 8], 1, 1e-5)) == first == encode_lines(net([0, 8, 8, 8], 1, 1e-5))


def test_memo_tables_belong_to_the_encoder_and_stay_bounded() -> None:
    """Item 6 of issue 13: no module-level caches; each encoder owns bounded tables, and the text never depends
    on what they hold."""
    import importlib
    import pkgutil

    package = importlib.import_module("predictors.onnx_text")
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"predictors.onnx_text.{info.name}")
        mutable = [name for name, value in vars(module).items()
                   if isinstance(value, (dict, set, bytearray)) and not name.startswith("__")]
        assert not mutable, (info.name, mutable)
    a, b = ot.OnnxTextEncoder(), ot.OnnxTextEncoder(memo_entries=2)
    model = residual_blocks()
    text = a.encode_lines(model)
    assert a.memo.size > 0 and b.memo.size == 0
    assert b.encode_lines(model) == text == b.encode_lines(model)   # tiny tables, cleared as they fill
    assert all(len(table) <= 2 for table in (b.memo.attrs, b.memo.shape, b.memo.value, b.memo.param, b.memo.stub))
    a.memo.clear()
    assert a.memo.size == 0 and a.encode_lines(model) == text


def test_package_modules_import_only_numpy_and_onnx() -> None:
    import predictors.onnx_text as package

    allowed = {"__future__", "dataclasses", "hashlib", "heapq", "itertools", "os", "pathlib", "typing", "numpy", "onnx",
               "predictors"}
    for path in Path(package.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert roots <= allowed, (path.name, roots)
        inner = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module.startswith("predictors")}
        assert all(m.startswith("predictors.onnx_text") for m in inner), (path.name, inner)
