"""The grammar file format: parsing, validation, error positions, probabilities."""

from __future__ import annotations

import pytest

from search_spaces._format.load import load_grammar, parse_grammar
from search_spaces.exceptions import GrammarSyntaxError
from search_spaces.spaces import builtin_grammar

SMALL = """
start net;
net -> sequential(mod, mod) @ 0.5 | routing(pre, mod, post);
mod -> comp @ 0.25 | sequential(mod, mod);
comp -> identity | linear(width in {8, 16});
pre -> identity;
post -> identity;
"""


def test_small_grammar_loads_with_probabilities() -> None:
    g = parse_grammar(SMALL, name="small")
    assert g.start == "net"
    assert [a.weight for a in g.rule("net").alternatives] == [0.5, 0.5]
    assert [a.weight for a in g.rule("mod").alternatives] == [0.25, 0.75]
    comp = g.rule("comp").alternatives
    assert [a.label() for a in comp] == ["identity", "linear[width=8]", "linear[width=16]"]
    assert sum(a.weight for a in comp) == pytest.approx(1.0)
    assert g.rule("pre").category == "pre" and g.rule("mod").category == "module"


def test_einspace_probabilities_match_the_paper() -> None:
    g = builtin_grammar("einspace.grammar")
    module = {a.term: a.weight for a in g.rule("module").alternatives}
    assert module["computation"] == pytest.approx(0.32)
    assert module["sequential"] == module["branching"] == module["routing"] == pytest.approx(0.68 / 3)
    assert len(g.rule("computation").alternatives) == 13  # identity, 8 linears, norm, leaky_relu, softmax, pos_enc
    assert len(g.rule("fork").alternatives) == 12 and len(g.rule("pre").alternatives) == 14
    assert len(g.rule("post").alternatives) == 8
    network = [a.weight for a in g.rule("network").alternatives]
    assert network == pytest.approx([1 / 3] * 3)


def test_probability_override() -> None:
    g = builtin_grammar("einspace.grammar").with_probabilities({"module": {"computation": 0.5}})
    module = {a.term: a.weight for a in g.rule("module").alternatives}
    assert module["computation"] == pytest.approx(0.5)
    assert module["routing"] == pytest.approx(0.5 / 3)
    with pytest.raises(GrammarSyntaxError, match="no alternative 'comp'"):
        g.with_probabilities({"module": {"comp": 0.5}})


def test_grammar_is_hashable_and_equal_when_same() -> None:
    assert parse_grammar(SMALL, name="a") == parse_grammar(SMALL, name="a")
    assert hash(parse_grammar(SMALL, name="a")) == hash(parse_grammar(SMALL, name="a"))


@pytest.mark.parametrize("text, message, line, column", [
    ("start net;\nnet -> sequential(mod mod);\n", "unexpected 'mod'", 2, 23),
    ("start net;\nnet -> sequential(mod, mod)\n", "expected", 2, 28),
    ("start net;\nnet -> sequential(mod, mdo);\nmod -> identity;\n", "unknown non-terminal 'mdo' (did you mean 'mod'?)",
     2, 24),
    ("start net;\nnet -> sequentail(mod, mod);\nmod -> identity;\n", "did you mean 'sequential'?", 2, 8),
    ("net -> linear(width = 2.5);\n", "must be int", 1, 15),
    ("net -> linear(widht in {8});\n", "no parameter 'widht' (did you mean 'width'?)", 1, 15),
    ("net -> linear;\n", "needs parameter 'width'", 1, 8),
    ("net -> identity @ 0.7 | norm @ 0.7;\n", "sum to 1.4 > 1", 1, 8),
    ("net -> identity @ 0.5 | norm @ 0.4;\n", "not 1", 1, 8),
    ("net -> sequential(net, net);\n", "can never finish", 1, 1),
    ("net -> identity;\nnet -> norm;\n", "defined twice", 2, 1),
    ("start nte;\nnet -> identity;\n", "start symbol 'nte' has no rule (did you mean 'net'?)", 1, 7),
    ("net -> branching(net, net, net) | identity;\n", "must derive forks", 1, 18),
    ("net -> identity $ norm;\n", "unexpected character '$'", 1, 17),
    ("net -> identity | clone(k = 2);\n", "mixes alternatives", 1, 1),
])
def test_errors_name_line_and_column(text: str, message: str, line: int, column: int) -> None:
    with pytest.raises(GrammarSyntaxError) as info:
        parse_grammar(text, file="bad.grammar")
    err = info.value
    assert message in str(err)
    assert (err.line, err.column) == (line, column), str(err)
    assert str(err).startswith(f"bad.grammar:{line}:{column}: ")
    assert "^" in str(err)  # the offending line is shown with a caret


def test_load_grammar_missing_file(tmp_path) -> None:
    with pytest.raises(GrammarSyntaxError, match="cannot read grammar file"):
        load_grammar(tmp_path / "nope.grammar")


def test_load_grammar_file_names_grammar_after_stem(tmp_path) -> None:
    path = tmp_path / "mine.grammar"
    path.write_text(SMALL)
    g = load_grammar(path)
    assert g.name == "mine" and g.source == str(path)
