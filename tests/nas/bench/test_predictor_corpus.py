"""Predictor corpora (``nas.bench.predictor_corpus``): built from benchmark tables, read back, refused when stale or
corrupt, written atomically."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from nas.bench.predictor_corpus import FORMAT, REBUILD, VERSION, load_corpus, write_corpora, write_corpus
from nas.candidate import build_candidate
from search_spaces.spaces import get_space


def test_a_table_becomes_one_labelled_row_per_architecture(small_corpora: dict[str, Path]) -> None:
    corpus = load_corpus(small_corpora["nb-macro"])
    assert (corpus.space, corpus.dataset, corpus.protocol) == ("nb-macro", "cifar10", "nas-bench-macro")
    assert corpus.group == "nb-macro/cifar10/nas-bench-macro"
    assert len(corpus.rows) == 40 and len({r.key for r in corpus.rows}) == 40
    space = get_space("nb-macro", (3, 32, 32))
    for row in corpus.rows[:3]:  # the row is the network the template builds from the table's key
        cand = build_candidate(space, space.from_arch(row.key), 10, check=False, weights=False)
        assert (row.hash, row.params, row.flops) == (cand.hash, cand.params, cand.flops)
        assert row.graph is not None and row.features.size > 0
    accuracies = corpus.accuracies()
    assert accuracies.min() >= 0.5 and accuracies.max() < 0.91  # percent in the table, fractions here


def test_nats_sss_gives_one_corpus_per_dataset_from_one_encoding(small_corpora: dict[str, Path]) -> None:
    corpora = [load_corpus(small_corpora[f"nats-sss-{d}"]) for d in ("cifar10", "cifar100", "imagenet16")]
    assert [c.dataset for c in corpora] == ["cifar10", "cifar100", "imagenet16-120"]
    keys = [[r.key for r in c.rows] for c in corpora]
    assert keys[0] == keys[1] == keys[2]
    for a, b in zip(corpora[0].rows, corpora[1].rows):  # the synthetic columns differ by exactly one point
        assert b.acc == pytest.approx(a.acc + 0.01) and a.hash == b.hash


def test_stale_and_corrupt_files_are_refused_naming_the_problem(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl.gz"
    with gzip.open(old, "wt") as handle:
        handle.write(json.dumps({"format": FORMAT, "version": VERSION - 1, "space": "x", "dataset": "y",
                                 "variant": "relative"}) + "\n")
    with pytest.raises(ValueError, match=f"version {VERSION - 1} corpus.*{REBUILD}"):
        load_corpus(old)
    other = tmp_path / "other.jsonl.gz"
    with gzip.open(other, "wt") as handle:
        handle.write(json.dumps({"format": "something else"}) + "\n")
    with pytest.raises(ValueError, match=f"is not a {FORMAT} file"):
        load_corpus(other)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read predictor corpus"):
        load_corpus(broken)
    bad_row = tmp_path / "bad_row.jsonl.gz"
    with gzip.open(bad_row, "wt") as handle:
        handle.write(json.dumps({"format": FORMAT, "version": VERSION, "space": "x", "dataset": "y",
                                 "variant": "relative"}) + "\n" + json.dumps({"key": "a"}) + "\n")
    with pytest.raises(ValueError, match="not a valid predictor corpus"):
        load_corpus(bad_row)


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path: Path) -> None:
    def rows():
        yield {"key": "a", "hash": "h", "params": 1, "flops": 2, "graph": {}, "features": []}
        raise RuntimeError("the encoder failed half-way")

    target = tmp_path / "c.jsonl.gz"
    with pytest.raises(RuntimeError, match="half-way"):
        write_corpus(target, "s", "d", rows(), "relative")
    assert list(tmp_path.iterdir()) == []


def test_labels_select_and_relabel_rows(tmp_path: Path) -> None:
    rows = [{"key": k, "hash": k, "params": 1, "flops": 1, "graph": {}, "features": []} for k in "abc"]
    paths = write_corpora({tmp_path / "x.jsonl.gz": ("s", "d", "p", {"a": 0.5, "c": 0.25})}, iter(rows), "relative")
    with gzip.open(paths[0], "rt") as handle:
        lines = [json.loads(line) for line in handle]
    assert lines[0]["protocol"] == "p"
    assert [(r["key"], r["acc"]) for r in lines[1:]] == [("a", 0.5), ("c", 0.25)]  # "b" has no label: skipped
