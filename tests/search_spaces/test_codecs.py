"""Architecture strings of the benchmark spaces (``search_spaces.codecs``): round trips, enumeration, bad strings."""

from __future__ import annotations

import pytest

from search_spaces.exceptions import DerivationSyntaxError, SearchSpaceError
from search_spaces.spaces import Space, get_space

NB201_ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"


@pytest.fixture(scope="module")
def nb201() -> Space:
    return get_space("nb201", (3, 16, 16))


@pytest.fixture(scope="module")
def macro() -> Space:
    return get_space("nb-macro", (3, 16, 16))


@pytest.fixture(scope="module")
def nats() -> Space:
    return get_space("nats-sss", (3, 16, 16))


def test_nb201_string_names_the_six_edges_in_order(nb201: Space) -> None:
    codec = nb201.spec.arch_codec
    assert codec.parse_arch(NB201_ARCH) == ["nor_conv_3x3", "none", "skip_connect", "nor_conv_1x1", "none",
                                            "avg_pool_3x3"]
    d = nb201.from_arch(NB201_ARCH)
    cell = next(node for _, node in d.root.walk() if node.alt.term == "cell201")
    assert [child.alt.label() for child in cell.children] == codec.parse_arch(NB201_ARCH)
    assert nb201.arch_string(d) == NB201_ARCH


@pytest.mark.parametrize("name, seeds", [("nb201", range(5)), ("nb-macro", range(5)), ("nats-sss", range(5))])
def test_sampled_architectures_round_trip_through_their_strings(name: str, seeds: range) -> None:
    space = get_space(name, (3, 16, 16))
    for seed in seeds:
        d = space.sample(seed)
        arch = space.arch_string(d)
        assert arch is not None
        assert str(space.from_arch(arch)) == str(d)


def test_enumerations_are_complete_and_distinct(nb201: Space, macro: Space) -> None:
    archs = list(nb201.enumerate())
    assert len(archs) == len(set(archs)) == 5 ** 6
    macro_archs = list(macro.enumerate())
    assert len(macro_archs) == len(set(macro_archs)) == 3 ** 8
    assert all(len(a) == 8 and set(a) <= set("012") for a in macro_archs)


def test_width_codec_reads_values_and_lists_one_slot_neighbours(nats: Space) -> None:
    codec = nats.spec.arch_codec
    assert codec.values(nats, "8:16:24:32:40") == [8, 16, 24, 32, 40]
    d = nats.from_arch("8:16:24:32:40")
    neighbours = codec.neighbours(nats, d, 2)
    strings = {nats.arch_string(n) for n in neighbours}
    assert "8:16:24:32:40" not in strings and len(strings) == len(neighbours) == 7
    assert all(s.split(":")[:2] == ["8", "16"] and s.split(":")[3:] == ["32", "40"] for s in strings)


@pytest.mark.parametrize("name, arch", [
    ("nb201", "|nor_conv_3x3~0|+|none~0|"),                         # too few edges
    ("nb201", NB201_ARCH.replace("avg_pool_3x3", "max_pool_3x3")),  # not an NB201 op
    ("nb-macro", "0201210"),                                        # seven layers
    ("nb-macro", "02012103"),                                       # choice 3 does not exist
    ("nats-sss", "8:16:24:32"),                                     # four widths
    ("nats-sss", "8:16:24:32:41"),                                  # 41 is not a width of the space
])
def test_malformed_strings_are_refused_with_a_clear_error(name: str, arch: str) -> None:
    space = get_space(name, (3, 16, 16))
    with pytest.raises((DerivationSyntaxError, SearchSpaceError, ValueError)) as info:
        space.from_arch(arch)
    assert str(info.value).strip()
    assert "\n" not in str(info.value).strip().splitlines()[0]


def test_spaces_without_a_codec_have_no_architecture_strings() -> None:
    space = get_space("einspace", (3, 8, 8))
    assert space.arch_string(space.sample(0)) is None
    with pytest.raises(SearchSpaceError, match="no enumeration"):
        space.enumerate()
