"""Property-based fuzzing (hypothesis) of the parsers a user feeds text to: the grammar loader, derivation and
architecture strings, and the YAML search config. Each may only raise the project's documented errors
(:class:`~search_spaces.exceptions.SearchSpaceError` below ``nas``, :class:`~nas.errors.NasError` in it), and no
input may take more than 5 s (hypothesis' deadline). Examples are derandomised so CI runs the same ones; the ONNX
text encoder and ``OnnxNetPredictor.load`` are fuzzed with the predictor's own tests.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.errors import NasError
from search_spaces._format.load import parse_grammar
from search_spaces.exceptions import SearchSpaceError
from search_spaces.spaces import get_space

FUZZ = settings(max_examples=150, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])



@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """Import once what the first example would (Ray Tune, torch): the deadline is for parsing, not importing."""
    from nas.search import SearchConfig

    SearchConfig()
    parse_grammar("net -> identity;\n")


# --------------------------------------------------------------------------------------------- grammar files

_NAMES = ["net", "mod", "a", "b", "pre", "post", "fork", "merge", "cell", "e.module"]
_TERMINALS = ["identity", "linear", "norm", "leaky_relu", "sequential", "routing", "branching", "clone", "split",
              "add", "concat", "im2col", "col2im", "permute", "residual", "repeat", "conv_bn", "cell201", "bogus"]
_PARAMS = ["width", "kernel", "stride", "padding", "k", "dim", "n", "order", "x"]
_VALUES = ["0", "1", "-5", "3", "64", "1e9", "0.5", '"s"', "(0, 2, 1)", "()", "99999999999999999999"]
_TOKENS = (_NAMES + _TERMINALS + _PARAMS + _VALUES
           + ["->", "|", ";", "(", ")", ",", "@", "=", "in", "{", "}", "start", "shared", "import", "as",
              '"einspace.grammar"', '"self.grammar"', '"/etc/passwd"', "#", "\n", "\t", "\u00b2", "\x00"])


@st.composite
def _alternative(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_TERMINALS + _NAMES))
    args = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 2))
        if kind == 0:
            args.append(draw(st.sampled_from(_NAMES)))
        elif kind == 1:
            args.append(f"{draw(st.sampled_from(_PARAMS))} = {draw(st.sampled_from(_VALUES))}")
        else:
            values = draw(st.lists(st.sampled_from(_VALUES), min_size=0, max_size=4))
            args.append(f"{draw(st.sampled_from(_PARAMS))} in {{{', '.join(values)}}}")
    text = name + (f"({', '.join(args)})" if args or draw(st.booleans()) else "")
    if draw(st.booleans()):
        text += f" @ {draw(st.sampled_from(['0', '0.5', '1', '2', '-1', '0.25']))}"
    return text


@st.composite
def _grammar(draw: st.DrawFn) -> str:
    rules = []
    for symbol in draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=6)):
        alternatives = draw(st.lists(_alternative(), min_size=1, max_size=4))
        rules.append(f"{symbol} -> {' | '.join(alternatives)};")
    if draw(st.booleans()):
        rules.insert(0, f"start {draw(st.sampled_from(_NAMES))};")
    if draw(st.booleans()):
        rules.insert(0, f"shared {draw(st.sampled_from(_NAMES))};")
    return "\n".join(rules) + "\n"


def _parse(text: str) -> None:
    try:
        parse_grammar(text, file="<fuzz>")
    except SearchSpaceError as err:
        assert str(err).strip()  # a message, never an empty error


@FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=60).map(" ".join))
def test_grammar_loader_on_token_soup(text: str) -> None:
    _parse(text)


@FUZZ
@given(_grammar())
def test_grammar_loader_on_well_formed_rules(text: str) -> None:
    _parse(text)


@FUZZ
@given(st.text(max_size=300))
def test_grammar_loader_on_any_text(text: str) -> None:
    _parse(text)


# -------------------------------------------------------------------------- derivation and architecture strings

_SPACES = {"einspace": (1, 8, 8), "nb201": (3, 16, 16), "nb-macro": (3, 16, 16), "nats-sss": (3, 16, 16)}


@pytest.fixture(scope="module")
def fuzz_spaces() -> dict[str, tuple]:
    """Each space with a few valid strings (derivation and architecture) to mutate."""
    out = {}
    for name, shape in _SPACES.items():
        space = get_space(name, shape)
        derivations = [str(space.sample(seed)) for seed in range(4)]
        archs = [a for a in (space.arch_string(space.parse(d)) for d in derivations) if a]
        out[name] = (space, derivations, archs)
    return out


def _mutate(data: st.DataObject, text: str) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.integers(0, 2))
        pos = data.draw(st.integers(0, len(chars)))
        if op == 0 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op == 1:
            chars.insert(pos, data.draw(st.sampled_from(list("()[]=,~|+: 0123456789\u00b2\u0663-x\n") + ["(", ")"])))
        else:
            chars[pos:pos] = list(data.draw(st.sampled_from(["(sequential ", ")", "linear[width=-5]", "~9", "|",
                                                             "(" * 300, "none~0|", ":99"])))
    return "".join(chars)


@FUZZ
@given(st.data())
def test_derivation_and_architecture_strings(fuzz_spaces: dict[str, tuple], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(fuzz_spaces)))
    space, derivations, archs = fuzz_spaces[name]
    seed_text = data.draw(st.sampled_from(derivations + archs))
    text = _mutate(data, seed_text) if data.draw(st.booleans()) else data.draw(st.text(max_size=120))
    for parse in (space.parse, space.from_arch):
        try:
            parse(text)
        except SearchSpaceError as err:
            assert str(err).strip()


# -------------------------------------------------------------------------------------- YAML search configs

_YAML_KEYS = ["space", "dataset", "strategy", "strategy_options", "seeds", "budget", "batch", "oversample",
              "scorers", "objectives", "seed", "limits", "train", "tune", "faults", "evaluator", "bogus"]
_YAML_VALUES = ["0", "-1", "1", "24", '"abc"', "null", "[]", "{}", "[val_acc, params]", "{max_params: big}",
                "{max_depth: 100000}", "{epochs: 0}", "{cpus_per_trial: 0}", "{1: raise}", "einspace", "nb-macro",
                "table:missing.json", "&a [1, 2]", "*a", "*b", "1e309", ".nan", "!!binary aGVsbG8=", "yes",
                "{population_size: -3}", "[[[[[[1]]]]]]", "'x' * 3"]


@st.composite
def _yaml(draw: st.DrawFn) -> str:
    lines = []
    for key in draw(st.lists(st.sampled_from(_YAML_KEYS), max_size=6, unique=True)):
        lines.append(f"{key}: {draw(st.sampled_from(_YAML_VALUES))}")
    return "\n".join(lines) + "\n"


def _load_yaml(tmp_path: Path, text: str) -> None:
    from nas.search import SearchConfig

    path = tmp_path / f"c{random.Random(text).randrange(10**9)}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        SearchConfig.from_yaml(path)
    except NasError as err:
        assert str(err).strip()
    finally:
        path.unlink()


@FUZZ
@given(_yaml())
def test_yaml_config_loader_on_field_soup(tmp_path: Path, text: str) -> None:
    _load_yaml(tmp_path, text)


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_yaml_config_loader_on_any_text(tmp_path: Path, text: str) -> None:
    _load_yaml(tmp_path, text)
