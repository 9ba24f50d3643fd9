"""Derivation strings at the level of ``search_spaces.sexpr``: the reader, canonical labels, and the parser's
type checks (shared motifs, nesting, leaves versus combinators)."""

from __future__ import annotations

import pytest

from search_spaces.exceptions import DerivationSyntaxError, DerivationTypeError
from search_spaces.sexpr import MAX_NESTING, Atom, DerivationParser, SList, canonical_label, read_sexpr
from search_spaces.spaces import get_space


def test_reader_gives_atoms_and_lists_with_their_columns() -> None:
    expr = read_sexpr("(sequential  linear[width=64] (routing identity norm identity))")
    assert isinstance(expr, SList) and expr.column == 1
    head, leaf, inner = expr.items
    assert (head.text, head.column) == ("sequential", 2)
    assert isinstance(leaf, Atom) and leaf.text == "linear[width=64]" and leaf.column == 14
    assert isinstance(inner, SList) and inner.column == 31 and [a.text for a in inner.items] == [
        "routing", "identity", "norm", "identity"]
    assert read_sexpr("norm") == Atom("norm", 1)


def test_canonical_labels_reprint_parameters() -> None:
    text = "linear[ width = 064 ]"
    assert canonical_label(Atom(text, 1), text) == "linear[width=64]"
    text = "permute[order=( 1 , 0 )]"
    assert canonical_label(Atom(text, 1), text) == "permute[order=(1,0)]"
    with pytest.raises(DerivationSyntaxError, match="malformed parameters"):
        canonical_label(Atom("linear[width]", 1), "linear[width]")


def test_nesting_beyond_the_limit_is_refused_before_type_checking() -> None:
    deep = "(sequential " * (MAX_NESTING + 1) + "norm" + ")" * (MAX_NESTING + 1)
    with pytest.raises(DerivationSyntaxError, match="nested"):
        read_sexpr(deep)


def test_parser_round_trips_samples_of_every_kind_of_space() -> None:
    for name, shape in [("einspace", (3, 16, 16)), ("einspace-1d", (1, 40)), ("hnb201", (3, 16, 16)),
                        ("seq-templates", (1, 40))]:
        space = get_space(name, shape)
        parser = DerivationParser(space.sampler)
        for seed in range(3):
            root = space.sample(seed).root
            parsed = parser.parse(root.to_sexpr())
            assert parsed == root and parsed.cost == root.cost and parsed.out_type == root.out_type


def test_a_shared_motif_must_be_the_same_at_every_use() -> None:
    space = get_space("nb201", (3, 16, 16))
    text = str(space.from_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"))
    changed = text.replace("avg_pool_3x3", "nor_conv_3x3", 1)  # only the first of the 15 cells
    with pytest.raises(DerivationTypeError, match="shared 'cell' must be the same everywhere"):
        DerivationParser(space.sampler).parse(changed)


def test_leaves_take_no_arguments_and_combinators_need_them() -> None:
    parser = DerivationParser(get_space("einspace", (3, 16, 16)).sampler)
    with pytest.raises(DerivationSyntaxError, match="takes no arguments"):
        parser.parse("(sequential (norm norm) norm)")
    with pytest.raises(DerivationSyntaxError, match="needs arguments"):
        parser.parse("(sequential sequential norm)")
    with pytest.raises(DerivationSyntaxError, match="a list must start with a name"):
        parser.parse("((sequential norm norm) norm)")
