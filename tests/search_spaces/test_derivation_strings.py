"""Derivation strings: round trips and clear errors for corrupt strings."""

from __future__ import annotations

import pytest

from search_spaces.exceptions import DerivationSyntaxError, DerivationTypeError
from search_spaces.spaces import get_space


@pytest.fixture(scope="module")
def space():
    return get_space("einspace", (3, 32, 32))


def test_whitespace_and_parameter_spelling_are_normalised(space) -> None:
    d = space.parse("( sequential  linear[ width = 64 ]\n norm )")
    assert str(d) == "(sequential linear[width=64] norm)"


@pytest.mark.parametrize("text, error, message, column", [
    ("(sequential norm", DerivationSyntaxError, "missing ')'", 1),
    ("(sequential norm norm))", DerivationSyntaxError, "text after the end", 23),
    ("(sequential norm nrom)", DerivationSyntaxError, "'nrom' is not an alternative of 'module' (did you mean 'norm'?)",
     18),
    ("(sequential norm linear[width=65])", DerivationSyntaxError, "not an alternative", 18),
    ("(sequential norm linear[width=6x])", DerivationSyntaxError, "bad parameter value", 18),
    ("(sequential norm)", DerivationTypeError, "takes 2 modules, got 1", 1),
    ("norm", DerivationSyntaxError, "'norm' is not an alternative of 'network'", 1),
    ("(routing identity norm col2im)", DerivationTypeError, "col2im needs an im2col", 1),
    ("(routing im2col[kernel=3,stride=1,padding=1] norm permute[order=(0,2,1)])", DerivationTypeError,
     "does not accept token[1024x27]", 1),
    ("(branching clone[k=4] norm norm add)", DerivationTypeError, "takes 1 module(s), got 2", 1),
    ("(branching split[k=2,dim=1] norm norm add)", DerivationTypeError, "does not accept image[3x32x32]", 1),
    ("(branching clone[k=2] norm linear[width=16] add)", DerivationTypeError, "aggregation add does not accept", 1),
    ("(sequential (norm) norm)", DerivationSyntaxError, "takes no arguments", 13),
    ("(sequential norm %)", DerivationSyntaxError, "unexpected character '%'", 18),
    ("", DerivationSyntaxError, "empty derivation string", 1),
])
def test_corrupt_strings_give_clear_errors(space, text, error, message, column) -> None:
    with pytest.raises(error) as info:
        space.parse(text)
    assert message in str(info.value)
    assert info.value.column == column


def test_split_needs_divisible_dims() -> None:
    space = get_space("einspace", (4, 32, 32))
    d = space.parse("(branching split[k=2,dim=1] norm norm concat[dim=1])")
    assert str(d.output_type) == "image[4x32x32]"
