"""Fixtures shared by the tests of nas: small predictor corpora rebuilt from synthetic benchmark tables (the real
tables live in ../shared, which CI clones lack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search_spaces.spaces import get_space

ROWS = 40


def _table(space: str, archs: list[str], columns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Accuracies (in percent, as the real tables) that rise with the architecture's parameter count."""
    from nas.candidate import build_candidate

    s = get_space(space, (3, 32, 32))
    params = {a: build_candidate(s, s.from_arch(a), 10, check=False, weights=False).params for a in archs}
    order = {a: i for i, a in enumerate(sorted(archs, key=lambda a: (params[a], a)))}
    return {a: {c: 50.0 + 40.0 * order[a] / len(archs) + k for k, c in enumerate(columns)} for a in archs}


@pytest.fixture(scope="session")
def small_corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"nb-macro": corpus, "nats-sss-cifar10": ..., "nats-sss-cifar100": ..., "nats-sss-imagenet16": ...}``,
    40 architectures each (the first of each enumeration, spaced out), built by nas.bench.predictor_corpus."""
    from nas.bench.predictor_corpus import corpora_from_nats_sss, corpus_from_nas_bench_macro

    out = tmp_path_factory.mktemp("corpora")
    macro_archs = list(get_space("nb-macro", (3, 32, 32)).enumerate())[::160][:ROWS]
    macro = out / "nb-macro.json"
    macro.write_text(json.dumps(_table("nb-macro", macro_archs, ("mean_acc",))))
    nats_archs = list(get_space("nats-sss", (3, 32, 32)).enumerate())[::800][:ROWS]
    nats = out / "nats-sss.json"
    nats.write_text(json.dumps(_table("nats-sss", nats_archs, ("acc", "c100", "in16"))))
    paths = {"nb-macro": corpus_from_nas_bench_macro(macro, out / "nb-macro-cifar10.jsonl.gz")}
    for path in corpora_from_nats_sss(nats, out):
        paths[path.name.removesuffix(".jsonl.gz")] = path
    return paths
