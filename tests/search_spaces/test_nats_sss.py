"""NATS-Bench size search space (Dong et al., TPAMI 2021): enumeration, codec, distinct graphs, ONNX, parameters.

The whole space (32,768 networks) is parsed once per module (~16 s of CPU); the checks over all of it reuse those
derivations. Building every graph and its canonical (Weisfeiler-Lehman) hash takes ~6-11 ms of CPU a network, about
3 CPU minutes for the space, so the default test proves the graphs distinct through the node labels the hash starts
from (op, attributes, input and output shapes), computed for every network by the terminals' own lowering, and
computes real canonical hashes on a seeded sample of 500; the full check hashes all 32,768 in two processes.
"""

from __future__ import annotations

import json
import random
from collections import Counter, namedtuple
from pathlib import Path

import pytest
import torch

from nas.candidate import build_candidate
from nas.export.verify import compare_with_onnxruntime
from nas.ir.build import build_graph
from nas.ir.graph import add_classifier_head
from nas.ir.ops import infer_shapes
from search_spaces.derivation import Derivation, DNode
from search_spaces.exceptions import DerivationSyntaxError
from search_spaces.spaces import Space, get_space, space_spec
from search_spaces.terminals.base import Leaf

TABLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "nats-sss" / "nats-sss.json"
WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64)
CLASSES = 10


@pytest.fixture(scope="module")
def space() -> Space:
    return get_space("nats-sss", (3, 32, 32))


@pytest.fixture(scope="module")
def everything(space: Space) -> dict[str, Derivation]:
    """Every architecture string of the space, parsed."""
    return {arch: space.from_arch(arch) for arch in space.enumerate()}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small convolutions run ~30x faster on one thread than on two contended ones on this kind of machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- the space and its strings ---------------------------------------------------------------------------------------


def test_space_is_built_in_with_32768_architectures(space: Space) -> None:
    spec = space_spec("nats-sss")
    assert spec.example_input == (3, 32, 32) and space.input_type.shape == (3, 32, 32)
    assert space.derivation_count() == 8**5 == 32_768
    d = space.from_arch("8:16:24:32:40")
    assert [c.out_type.shape for c in d.root.children] == [(8, 32, 32), (8, 32, 32), (16, 16, 16), (24, 16, 16),
                                                           (32, 8, 8), (40, 8, 8), (40, 8, 8)]


def test_enumeration_is_32768_distinct_strings_in_a_fixed_order_that_round_trip(space: Space, everything) -> None:
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == 32_768
    assert archs[:2] == ["8:8:8:8:8", "8:8:8:8:16"] and archs[-1] == "64:64:64:64:64"
    assert archs == list(space.enumerate())
    assert {tuple(map(int, a.split(":"))) for a in archs} == {(a, b, c, d, e) for a in WIDTHS for b in WIDTHS
                                                              for c in WIDTHS for d in WIDTHS for e in WIDTHS}
    assert [a for a, d in everything.items() if space.arch_string(d) != a] == []
    for arch in random.Random(0).sample(archs, 50):  # the derivation string parses back to the same tree
        d = everything[arch]
        assert space.parse(str(d)).root == d.root and space.from_arch(str(d)).root == d.root


def test_every_network_fits_the_default_limits(space: Space, everything) -> None:
    limits = space.limits
    assert all(d.cost.fits(limits.budget()) and d.depth <= limits.max_depth for d in everything.values())
    assert max(n.out_type.numel for d in everything.values() for _, n in d.root.walk()) <= limits.max_elements
    largest = max(everything, key=lambda a: everything[a].cost.params)
    assert largest == max(everything, key=lambda a: everything[a].cost.flops) == "64:64:64:64:64"
    assert everything[largest].cost.params < limits.max_params and everything[largest].cost.flops < limits.max_flops
    # so the sampler prunes nothing: every width of every slot is reached
    seen = [set() for _ in range(5)]
    for seed in range(300):
        for i, w in enumerate(space.arch_string(space.sample(seed)).split(":")):
            seen[i].add(int(w))
    assert seen == [set(WIDTHS)] * 5


@pytest.mark.parametrize("arch, message", [
    ("64:64:64:64", "have 5 widths joined by ':'"),
    ("64:64:64:64:64:64", "have 5 widths joined by ':'"),
    ("64-64-64-64-64", r"got 1 in '64-64-64-64-64'"),
    ("", "have 5 widths"),
    ("64:64:64:64:65", (r"width '65' at position 5 \(layer4\) of '64:64:64:64:65' is not one of 8, 16, 24, 32, "
                        r"40, 48, 56, 64")),
    ("64:0:64:64:64", r"width '0' at position 2 \(layer1\)"),
    ("64:64:x:64:64", r"width 'x' at position 3 \(layer2\)"),
    ("64:64:64:-8:64", r"width '-8' at position 4"),
])
def test_bad_strings_give_clear_errors(space: Space, arch: str, message: str) -> None:
    with pytest.raises(DerivationSyntaxError, match=message):
        space.from_arch(arch)


def test_every_key_of_the_table_parses(space: Space, everything) -> None:
    if not TABLE.is_file():
        pytest.skip(f"NATS-Bench SSS table not found at {TABLE}")
    table = json.loads(TABLE.read_text())
    assert len(table) == 32_768 and set(table) == set(everything)  # every key is one of the parsed strings
    for arch in random.Random(2).sample(sorted(table), 100):
        assert space.arch_string(space.from_arch(arch)) == arch
    assert table["64:64:64:64:64"]["acc"] == pytest.approx(90.71, abs=0.01)  # the README's top and bottom
    assert table["8:8:8:8:8"]["acc"] == pytest.approx(76.89, abs=0.01)


# --- distinct graphs -------------------------------------------------------------------------------------------------

_V = namedtuple("_V", "shape")


class _LabelRecorder:
    """``build_graph``'s builder protocol over shapes: records every op's node label as ``canonical_hash`` writes
    it (op, attributes, input shapes, output shapes), without building a networkx graph."""

    def __init__(self) -> None:
        self.labels: list[tuple] = []

    def add_op(self, op: str, attrs: dict, values) -> list[_V]:
        shapes = tuple(tuple(v.shape) for v in values)
        outs = tuple(tuple(s) for s in infer_shapes(op, attrs, shapes))
        self.labels.append((op, tuple(sorted(attrs.items())), shapes, outs))
        return [_V(s) for s in outs]

    def add_chain(self, chain, value: _V) -> _V:
        for op, attrs in chain:
            (value,) = self.add_op(op, attrs, [value])
        return value

    def add_merge(self, op: str, attrs: dict, values) -> _V:
        (value,) = self.add_op(op, attrs, values)
        return value


_LEAF_LABELS: dict[tuple, tuple[list[tuple], _V]] = {}


def _node_labels(space: Space, d: Derivation) -> frozenset:
    """The multiset of node labels of ``build_graph(space, d, CLASSES)``, lowered as build_graph lowers; a leaf's
    ops depend only on its parameters and input type, so each (leaf, input type) is lowered once."""
    labels, sampler = [], space.sampler

    def lower(node: DNode, value: _V) -> _V:
        term = sampler.grammar.terminal(node.alt, sampler.grammar.rule(node.symbol).category)
        if isinstance(term, Leaf):
            key = (node.symbol, node.alt.label(), node.in_type)
            if key not in _LEAF_LABELS:
                rec = _LabelRecorder()
                _LEAF_LABELS[key] = rec.labels, term.lower(node.alt.param_dict, rec, value, node.in_type)
            found, out = _LEAF_LABELS[key]
            labels.extend(found)
            return out
        rec = _LabelRecorder()  # ops a combinator adds itself (sequential: none)
        out = term.lower(sampler, node, rec, value, lower)
        labels.extend(rec.labels)
        return out

    out = lower(d.root, _V(d.input_type.shape))
    head = _LabelRecorder()
    add_classifier_head(head, out, d.output_type.feature_axis, CLASSES)  # type: ignore[arg-type]
    return frozenset(Counter(labels + head.labels).items())


def test_all_32768_networks_are_distinct_graphs(space: Space, everything) -> None:
    """Isomorphic graphs have equal node-label multisets, and WL hashing refines the labels it starts from, so 32,768
    distinct multisets mean 32,768 pairwise non-isomorphic graphs (distinct canonical hashes barring a collision of
    the hash); real canonical hashes are computed on a seeded sample."""
    labels = {arch: _node_labels(space, d) for arch, d in everything.items()}
    assert len(set(labels.values())) == 32_768
    sample = random.Random(3).sample(sorted(everything), 500)
    hashes = {}
    for arch in sample:
        graph = build_graph(space, everything[arch], CLASSES)
        nodes = Counter((d["op"], tuple(sorted(d["attrs"].items())), d["in_shapes"], d["out_shapes"])
                        for _, d in graph.g.nodes(data=True) if d["op"] not in ("input", "output"))
        assert frozenset(nodes.items()) == labels[arch]  # the recorder sees exactly the graph's nodes
        hashes[arch] = graph.canonical_hash()
    assert len(set(hashes.values())) == len(sample)
    arch = sample[0]  # the hash is a function of the architecture: a rebuilt graph hashes the same
    assert build_graph(space, space.from_arch(arch), CLASSES).canonical_hash() == hashes[arch]


def _hashes(archs: list[str]) -> list[str]:
    torch.set_num_threads(1)
    space = get_space("nats-sss", (3, 32, 32))
    return [build_graph(space, space.from_arch(a), CLASSES).canonical_hash() for a in archs]


def test_all_32768_canonical_hashes_are_distinct(space: Space) -> None:
    """The real check (~3 CPU minutes), split over two processes."""
    import multiprocessing as mp

    archs = list(space.enumerate())
    with mp.get_context("fork").Pool(2) as pool:
        hashes = [h for chunk in pool.map(_hashes, [archs[i::16] for i in range(16)]) for h in chunk]
    assert len(hashes) == len(set(hashes)) == 32_768


# --- build, run, export ----------------------------------------------------------------------------------------------


def test_a_seeded_sample_of_200_builds_runs_and_matches_onnxruntime(space: Space) -> None:
    archs = random.Random(4).sample(list(space.enumerate()), 198) + ["8:8:8:8:8", "64:64:64:64:64"]
    x = torch.randn(2, 3, 32, 32)
    for i, arch in enumerate(archs):
        torch.manual_seed(i)
        cand = build_candidate(space, space.from_arch(arch), num_classes=CLASSES)
        assert cand.arch == arch
        with torch.no_grad():
            assert cand.module.eval()(x).shape == (2, CLASSES)
        result = compare_with_onnxruntime(cand.onnx_model, cand.module, (3, 32, 32), batch=2)
        assert result.ok, (arch, result)
        meta = {p.key: p.value for p in cand.onnx_model.metadata_props}
        assert meta["arch"] == arch and meta["space"] == "nats-sss"


# --- parameter counts, by hand from the README's description -------------------------------------------------------


def hand_count(arch: str, classes: int = CLASSES) -> int:
    """Trainable parameters: convs have no bias, every BatchNorm has 2 per channel, the classifier has a bias.

    stem: conv3x3 3 -> c0 + BN;
    cell(a -> b): nor_conv edges 0->1, 0->2 (a -> b), 1->2, 1->3, 2->3 (b -> b), and skip_connect 0->3, which is a
    conv1x1 + BN only when a != b;
    resblock(a -> b): ReLU-conv3x3(s2)-BN a -> b, ReLU-conv3x3-BN b -> b, shortcut avgpool + conv1x1 a -> b;
    head: BN(c4), linear c4 -> classes.
    """
    c0, c1, c2, c3, c4 = map(int, arch.split(":"))

    def cell(a: int, b: int) -> int:
        return 2 * (9 * a * b + 2 * b) + 3 * (9 * b * b + 2 * b) + (a * b + 2 * b if a != b else 0)

    def resblock(a: int, b: int) -> int:
        return (9 * a * b + 2 * b) + (9 * b * b + 2 * b) + a * b

    stem = 27 * c0 + 2 * c0
    head = 2 * c4 + c4 * classes + classes
    return stem + cell(c0, c0) + resblock(c0, c1) + cell(c1, c2) + resblock(c2, c3) + cell(c3, c4) + head


@pytest.mark.parametrize("arch, expected", [("8:8:8:8:8", 11_714), ("64:64:64:64:64", 713_674),
                                            ("8:16:24:32:40", 115_490), ("64:8:56:16:48", None),
                                            ("40:40:24:24:8", None)])
def test_parameter_counts_match_a_hand_count(space: Space, arch: str, expected: int | None) -> None:
    if expected is not None:  # worked out on paper: e.g. all-8 = 232 + 3 x 2,960 + 2 x 1,248 + 106
        assert hand_count(arch) == expected
    cand = build_candidate(space, space.from_arch(arch), num_classes=CLASSES, check=False)
    assert cand.params == hand_count(arch) == sum(p.numel() for p in cand.module.parameters())
    _, c1, c2, c3, c4 = map(int, arch.split(":"))  # stem 1, cells 5 each (+1 when widths change), blocks 3 each
    convs = [d["attrs"] for _, d in cand.graph.g.nodes(data=True) if d["op"] == "conv2d"]
    assert len(convs) == 1 + 3 * 5 + 2 * 3 + (c1 != c2) + (c3 != c4)
    assert sorted(c["kernel"] for c in convs).count(1) == 2 + (c1 != c2) + (c3 != c4)


def test_hand_count_matches_every_network(everything) -> None:
    head = {w: 2 * w + w * CLASSES + CLASSES for w in WIDTHS}  # BN + linear, added by the graph builder
    wrong = [a for a, d in everything.items()
             if d.cost.params - 2 * d.output_type.shape[0] + head[d.output_type.shape[0]] != hand_count(a)]
    assert wrong == []  # cost.params includes lastact's BN (2 x c4), not the linear head


# --- sampling and mutation -------------------------------------------------------------------------------------------


def test_sampling_is_seeded_and_gives_valid_networks(space: Space) -> None:
    assert space.sample(7).root == space.sample(7).root
    samples = [space.sample(seed) for seed in range(40)]
    assert len({space.arch_string(d) for d in samples}) > 35
    for d in samples:
        assert space.parse(str(d)).root == d.root
        assert space.from_arch(space.arch_string(d)).root == d.root


def test_mutation_changes_exactly_one_width_within_the_limits(space: Space) -> None:
    """A subtree resampling would keep a slot's width (it is the slot's output type), so the space mutates one
    width slot to another value; every slot gets mutated, symbols restrict the slot, and limits are kept."""
    slots = Counter()
    for seed in range(80):
        parent = space.sample(seed)
        child, info = space.mutate(parent, seed)
        assert info.operator == "mutation" and space.parse(str(child)).root == child.root
        before, after = space.arch_string(parent).split(":"), space.arch_string(child).split(":")
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        assert len(changed) == 1
        assert parent.root.at(info.path).symbol == space.spec.arch_codec.choices(space)[changed[0]][0]
        slots[changed[0]] += 1
    assert sorted(slots) == [0, 1, 2, 3, 4]
    symbol = space.spec.arch_codec.choices(space)[2][0]
    child, info = space.mutate(space.sample(1), 3, symbols={symbol})
    assert parent.root.at(info.path).symbol == symbol
    from search_spaces.sampler import Limits

    small = get_space("nats-sss", (3, 32, 32), limits=Limits(**{**vars(space.limits), "max_flops": 30_000_000}))
    parent = small.from_arch("8:8:8:8:8")
    for seed in range(30):
        child, _ = small.mutate(parent, seed)
        assert child.cost.flops <= 30_000_000
