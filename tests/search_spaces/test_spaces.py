"""Benchmark and template spaces: published facts (NB201, NB-Macro), codecs, enumeration, sizes, template bits."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from nas.candidate import build_candidate
from nas.export.verify import compare_with_onnxruntime
from search_spaces.exceptions import DerivationSyntaxError, DerivationTypeError
from search_spaces.spaces import get_space

ALL_3x3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MACRO_TABLE = (Path(__file__).resolve().parents[3] / "shared" / "data" / "nas-bench-macro"
               / "nas-bench-macro_cifar10.json")


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201", (3, 32, 32))


@pytest.fixture(scope="module")
def macro():
    return get_space("nb-macro", (3, 32, 32))


@pytest.fixture(scope="module")
def macro_table() -> dict:
    if not MACRO_TABLE.is_file():
        pytest.skip(f"NAS-Bench-Macro table not found at {MACRO_TABLE}")
    return json.loads(MACRO_TABLE.read_text())


def test_nb201_all_conv3x3_has_the_published_parameter_count(nb201) -> None:
    cand = build_candidate(nb201, nb201.from_arch(ALL_3x3), num_classes=10)
    assert cand.params == 1_531_546
    assert sum(p.numel() for p in cand.module.parameters()) == 1_531_546
    assert cand.arch == ALL_3x3


def test_nb201_onnx_matches_torch_in_onnxruntime(nb201) -> None:
    arch = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    torch.manual_seed(0)
    cand = build_candidate(nb201, nb201.from_arch(arch), num_classes=10)
    assert compare_with_onnxruntime(cand.onnx_model, cand.module, (3, 32, 32), batch=2).ok
    meta = {p.key: p.value for p in cand.onnx_model.metadata_props}
    assert meta["arch"] == arch and meta["space"] == "nb201"


def test_nb201_enumerates_15625_architectures_that_round_trip(nb201) -> None:
    archs = list(nb201.enumerate())
    assert len(archs) == len(set(archs)) == 15_625 == nb201.derivation_count()
    for arch in random.Random(0).sample(archs, 60):
        d = nb201.from_arch(arch)
        assert nb201.arch_string(d) == arch
        assert nb201.parse(str(d)).root == d.root


def test_nb201_sampled_cells_are_shared_across_all_15_positions(nb201) -> None:
    d = nb201.sample(3)
    cells = {n.to_sexpr() for _, n in d.root.walk() if n.alt.term == "cell201"}
    assert len(cells) == 1
    child, _ = nb201.mutate(d, 1)
    assert len({n.to_sexpr() for _, n in child.root.walk() if n.alt.term == "cell201"}) == 1


@pytest.mark.parametrize("arch, message", [("|nor_conv_3x3~0|+|none~0|", "not a NAS-Bench-201 architecture"),
                                           (ALL_3x3.replace("nor_conv_3x3~2", "conv~2"), "unknown NAS-Bench-201 op"),
                                           (ALL_3x3.replace("~1|+", "~0|+", 1), "must list inputs")])
def test_nb201_bad_strings(nb201, arch: str, message: str) -> None:
    with pytest.raises(DerivationSyntaxError, match=message):
        nb201.from_arch(arch)


def test_nb201_cells_must_be_identical_when_written_out(nb201) -> None:
    text = str(nb201.from_arch(ALL_3x3))
    broken = text.replace("(cell201 nor_conv_3x3", "(cell201 none", 1)
    with pytest.raises(DerivationTypeError, match="shared 'cell' must be the same everywhere"):
        nb201.parse(broken)


def test_nb_macro_matches_the_table_on_a_large_sample(macro, macro_table) -> None:
    """Static counts for all 6,561; graph, torch module and FLOPs (= 2 x the table's MACs) for a sample."""
    assert macro.derivation_count() == len(macro_table) == 6_561
    assert sorted(macro.enumerate()) == sorted(macro_table)
    head = 1280 * 10 + 10
    mismatches = [a for a in macro_table if macro.from_arch(a).cost.params + head != macro_table[a]["params"]]
    assert mismatches == []
    for arch in random.Random(1).sample(sorted(macro_table), 40):
        cand = build_candidate(macro, macro.from_arch(arch), num_classes=10, check=False)
        assert cand.params == macro_table[arch]["params"] == sum(p.numel() for p in cand.module.parameters())
        assert cand.flops == 2 * macro_table[arch]["flops"]
        assert cand.arch == arch


def test_nb_macro_documented_example(macro) -> None:
    assert build_candidate(macro, macro.from_arch("02012100"), 10).params == 890_666


def test_nb_macro_onnx_matches_torch_in_onnxruntime(macro) -> None:
    torch.manual_seed(0)
    cand = build_candidate(macro, macro.from_arch("12012201"), num_classes=10)
    assert compare_with_onnxruntime(cand.onnx_model, cand.module, (3, 32, 32), batch=2).ok


@pytest.mark.parametrize("arch, message", [("0201210", "have 8 digits"), ("02012103", "out of range"),
                                           ("0201210x", "have 8 digits")])
def test_nb_macro_bad_strings(macro, arch: str, message: str) -> None:
    with pytest.raises(DerivationSyntaxError, match=message):
        macro.from_arch(arch)


def test_hierarchical_space_sizes_are_computed_from_the_grammar() -> None:
    hnb = get_space("hnb201", (3, 32, 32)).derivation_count()
    shared = get_space("hnb201-shared", (3, 32, 32)).derivation_count()
    assert hnb is not None and shared is not None
    assert 100 < math.log10(hnb) < 1000
    assert math.log10(shared) < math.log10(hnb)  # one shared cell has far fewer derivations
    assert get_space("einspace", (3, 32, 32)).derivation_count() is None  # recursive: unbounded
    assert get_space("hnb201-einspace", (3, 32, 32)).derivation_count() is None


def test_hnb201_uses_its_hierarchy() -> None:
    space = get_space("hnb201", (3, 32, 32))
    seen: set[str] = set()
    for seed in range(30):
        seen |= {n.alt.term for _, n in space.sample(seed).root.walk()}
    assert {"residual", "diamond", "cell201", "conv_block", "resblock", "sequential"} <= seen


def test_hnb201_shared_reuses_one_cell() -> None:
    space = get_space("hnb201-shared", (3, 16, 16))
    for seed in range(10):
        d = space.sample(seed)
        assert len({n.to_sexpr() for _, n in d.root.walk() if n.symbol == "cell"}) == 1


def test_einspace_fills_the_holes_of_the_template() -> None:
    space = get_space("hnb201-einspace", (3, 8, 8))
    terms: set[str] = set()
    for seed in range(20):
        d = space.sample(seed)
        terms |= {n.alt.term for _, n in d.root.walk() if n.symbol.startswith("ein.")}
        cells = [n for _, n in d.root.walk() if n.alt.term == "cell201"]
        assert cells and all(c.in_type == c.out_type for c in cells)
    assert {"branching", "routing", "sequential"} & terms and "linear" in terms


def test_template_bits_are_exposed_and_mutable_one_at_a_time() -> None:
    space = get_space("seq-templates", (1, 40))
    assert space.template_choices() == {"embed": ["conv_stem", "pointwise_stem"],
                                        "mixer": ["attention_mixer", "conv_mixer"], "ffn": ["mlp_ffn", "no_ffn"]}
    templates = {tuple(sorted(space.template_of(space.sample(s)).items())) for s in range(120)}
    assert len(templates) == 8  # every template is reachable
    flips = 0
    for seed in range(40):
        parent = space.sample(seed)
        child, info = space.mutate(parent, seed, symbols={"mixer"})
        assert info.operator == "mutation" and child.root.at(info.path).symbol == "mixer"
        before, after = space.template_of(parent), space.template_of(child)
        assert before["embed"] == after["embed"] and before["ffn"] == after["ffn"]
        flips += before["mixer"] != after["mixer"]
    assert flips > 10


@pytest.mark.parametrize("name, shape", [("hnb201", (3, 16, 16)), ("seq-templates", (1, 40)),
                                         ("hnb201-einspace", (3, 8, 8))])
def test_template_spaces_export_and_match_onnxruntime(name: str, shape: tuple[int, ...]) -> None:
    space = get_space(name, shape)
    for seed in range(3):
        torch.manual_seed(seed)
        cand = build_candidate(space, space.sample(seed), num_classes=5)
        assert compare_with_onnxruntime(cand.onnx_model, cand.module, shape).ok
