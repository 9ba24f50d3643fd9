"""Issue 13 item 5: the faster encoder gives exactly what the encoder of 5ed0cc7 gave.

``data/encoding_golden.json`` was written by ``tests/predictors/encoding_golden.py`` from the tree at 5ed0cc7,
before any speed work: digests of the text variants, shapes, stats, predictor inputs, GRAF-lite vectors and the
default predictor's feature rows of 6 sampled ONNX files (with weights) of every built-in space. The shipped
priors and the committed catalogue ``features.npz`` caches were computed with that encoder, so any difference
here is a bug, not a golden file to regenerate."""

from __future__ import annotations

import json

import pytest

from tests.predictors.encoding_golden import GOLDEN, SPACES, build, digest, record

GOLDEN_DATA = json.loads(GOLDEN.read_text())
BY_SPACE: dict[str, list[dict]] = {}
for _entry in GOLDEN_DATA["models"]:
    BY_SPACE.setdefault(_entry["space"], []).append(_entry)


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, int], bytes]:
    out = {}
    for entry in GOLDEN_DATA["models"]:
        canonical, data = build(entry["space"], entry["seed"])
        assert canonical == entry["hash"], f"{entry['space']} seed {entry['seed']}: the sampler changed"
        out[(entry["space"], entry["seed"])] = data
    return out


def test_the_golden_file_covers_every_built_in_space() -> None:
    from search_spaces import list_spaces

    assert GOLDEN_DATA["commit"].startswith("5ed0cc7")
    assert set(BY_SPACE) == set(SPACES)
    assert set(SPACES) >= {spec.name for spec in list_spaces()}
    assert all(len(entries) == 6 for entries in BY_SPACE.values())


@pytest.mark.parametrize("space", sorted(SPACES))
def test_encodings_are_identical_to_5ed0cc7(space: str, models: dict) -> None:
    for entry in BY_SPACE[space]:
        got = record(models[(space, entry["seed"])])
        want = {k: v for k, v in entry.items() if k not in ("space", "seed", "hash")}
        assert got == want, f"{space} seed {entry['seed']}: {sorted(k for k in want if got.get(k) != want[k])} differ"


def test_the_encoding_pool_and_file_paths_give_the_same_inputs(models: dict, tmp_path) -> None:  # noqa: ANN001
    from predictors import OnnxNetPredictor

    keys = sorted(models)
    paths = []
    for space, seed in keys[:8]:
        path = tmp_path / f"{space}-{seed}.onnx"
        path.write_bytes(models[(space, seed)])
        paths.append(path)
    predictor = OnnxNetPredictor.default()
    predictor.config.encode_workers = 2
    try:
        pooled = predictor.encode([models[k] for k in keys])   # >= 32 models: the process pool
    finally:
        predictor.close()
    want = {(e["space"], e["seed"]): e["encoded"] for e in GOLDEN_DATA["models"]}
    assert [digest(g.to_json()) for g in pooled] == [want[k] for k in keys]
    single = OnnxNetPredictor.default()
    single.config.encode_workers = 1
    assert [digest(g.to_json()) for g in single.encode(paths)] == [want[k] for k in keys[:8]]


def test_one_encoder_for_many_models_gives_what_a_fresh_one_gives(models: dict, monkeypatch) -> None:  # noqa: ANN001
    """The encoder's memo of shape inference (predictors.onnx_text.shape_memo) answers for models whose nodes it
    has met in other models; its answers are those of inference, and with inference broken the memo alone still
    gives the golden texts and shapes."""
    import onnx

    from predictors.onnx_text import OnnxTextEncoder

    shared = OnnxTextEncoder()
    for key in sorted(models):
        fresh = OnnxTextEncoder().encode(models[key], variant="relative")
        again = shared.encode(models[key], variant="relative")
        assert (again.lines, again.shapes, again.stats) == (fresh.lines, fresh.shapes, fresh.stats), key
        assert list(again.shapes) == list(fresh.shapes)
    assert shared.memo.node_types

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("shape inference must not run: every node is in the memo")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", broken)
    for entry in BY_SPACE["nb201"] + BY_SPACE["nb-macro"]:
        data = models[(entry["space"], entry["seed"])]
        encoding = shared.encode(data, variant="relative")
        assert digest(encoding.lines) == entry["relative"] and digest(encoding.shapes) == entry["shapes"]


def _reference_hash_embedding(lines: list[str], dim: int, max_n: int):  # noqa: ANN202
    """HashedNgramEncoder as 5ed0cc7 computed it: every n-gram of every line hashed, one by one."""
    import numpy as np

    from predictors.onnx_net.encoders import stable_hash, tokenize

    out = np.zeros((len(lines), dim), dtype=np.float32)
    for row, line in enumerate(lines):
        tokens = tokenize(line)
        for n in range(1, max_n + 1):
            for i in range(len(tokens) - n + 1):
                h = stable_hash(" ".join(tokens[i:i + n]))
                out[row, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(out[row]))
        if norm > 0:
            out[row] /= norm
    return out


@pytest.mark.parametrize(("dim", "max_n"), [(64, 3), (512, 3), (16, 1), (64, 2), (32, 5)])
def test_the_hashed_encoder_tables_give_the_vectors_of_5ed0cc7(dim: int, max_n: int, models: dict) -> None:
    """The encoder's tables (pieces between separators, n-grams around them) never change a vector."""
    import numpy as np

    from predictors.onnx_net.encoders import HashedNgramEncoder
    from predictors.onnx_net.predictor import encode_graph

    lines = [line for key in sorted(models)[::5] for line in encode_graph(models[key]).lines]
    lines += ["", " => ", "a => b", "x => y => z", "A --> B", " --> ", "-->", "=>", "a=>b --> c", "1e => 5",
              "Relu --> V+1:?x8 => Add(V-1, V-2) --> V+1:?x8", "  =>  -->  ", "q --> => r"]
    lines = list(dict.fromkeys(lines))
    want = _reference_hash_embedding(lines, dim, max_n)
    encoder = HashedNgramEncoder(dim=dim, max_n=max_n)
    assert np.array_equal(np.concatenate([encoder.embed(lines[b:b + 7]) for b in range(0, len(lines), 7)]), want)
    assert np.array_equal(HashedNgramEncoder(dim=dim, max_n=max_n).embed(lines[::-1]), want[::-1])
