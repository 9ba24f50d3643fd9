"""Issue 13 item 1: the wiring survives into what the predictor reads. Two architectures get the same predictor
input only if they have the same canonical graph hash, on every NAS-Bench-Macro architecture (6,561) and on the
NAS-Bench-201 cells of the structure corpus (a seeded sample, see benchmarks/predictor_corpus.py; encoding all
15,625 cells costs ~1.5 CPU-hours here).

The corpora are encoded once (``python benchmarks/predictor_corpus.py``); each test first re-encodes a sample of
their architectures from scratch and requires the stored inputs to be exactly what the encoder gives today, so
a stale file fails instead of passing on old encodings."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from predictors.onnx_net.predictor import encode_graph

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "benchmarks" / "results" / "predictor"
FILES = {"nb-macro": CORPORA / "nb-macro-cifar10.jsonl.gz", "nb201": CORPORA / "structure" / "nb201.jsonl.gz"}


def _key(graph) -> tuple:  # noqa: ANN001
    return graph.lines, graph.counts, graph.global_features


def _build(space_name: str, arch: str):  # noqa: ANN202
    from nas.candidate import build_candidate
    from search_spaces import get_space

    space = get_space(space_name, (3, 32, 32))
    return build_candidate(space, space.from_arch(arch), 10, check=False, weights=False)


@pytest.fixture(scope="module", params=sorted(FILES))
def corpus(request):  # noqa: ANN201
    from nas.bench.predictor_corpus import load_corpus

    path = FILES[request.param]
    if not path.exists():
        pytest.fail(f"{path} is missing: python benchmarks/predictor_corpus.py --only nb-macro nb201-all")
    return request.param, load_corpus(path)


def test_stored_inputs_are_what_the_encoder_gives_today(corpus) -> None:
    space, c = corpus
    for row in random.Random(0).sample(c.rows, 8):
        cand = _build(space, row.key)
        assert cand.hash == row.hash
        assert encode_graph(cand.onnx_model) == row.graph, row.key
        assert encode_graph(_build(space, row.key).onnx_model.SerializeToString()) == row.graph


def test_same_predictor_input_only_for_the_same_canonical_graph(corpus) -> None:
    space, c = corpus
    if space == "nb-macro":
        assert len(c.rows) == 6561
    else:
        assert len(c.rows) >= 1000
    hashes: dict[tuple, set[str]] = defaultdict(set)
    for row in c.rows:
        assert row.hash
        hashes[_key(row.graph)].add(row.hash)
    shared = {k: v for k, v in hashes.items() if len(v) > 1}
    assert not shared, f"{len(shared)} predictor inputs stand for several graphs, e.g. {next(iter(shared.values()))}"


def test_feature_vectors_of_the_default_keep_them_apart(corpus) -> None:
    """What the head sees (pooled embeddings + global features) separates the graphs too."""
    from predictors import OnnxNetPredictor

    space, c = corpus
    predictor = OnnxNetPredictor.default()
    rows = c.rows if space == "nb-macro" else c.rows[:3000]
    x = predictor.features([r.graph for r in rows])
    owners: dict[bytes, set[str]] = defaultdict(set)
    for vector, row in zip(np.round(x, 6), rows):
        owners[vector.tobytes()].add(row.hash)
    assert all(len(v) == 1 for v in owners.values())


def test_the_bag_of_relative_lines_alone_would_confuse_these_two_cells() -> None:
    """Two NB-201 cells whose relative-id lines form the same multiset: the consecutive-line pairs tell them
    apart (so the test above can fail: without the pairs it finds such collisions)."""
    a = _build("nb201", "|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|")
    b = _build("nb201", "|none~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|")
    ga, gb = encode_graph(a.onnx_model), encode_graph(b.onnx_model)
    assert a.hash != b.hash and _key(ga) != _key(gb)
    singles = [{(line, n) for line, n in zip(g.lines, g.counts) if " => " not in line} for g in (ga, gb)]
    assert singles[0] == singles[1]
