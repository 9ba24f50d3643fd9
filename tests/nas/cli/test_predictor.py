"""``nas predictor fit`` (corpora, or ``--onnx-dir DIR --labels FILE.csv``), ``info [PATH]`` and ``eval``, run as
users run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def nas(*args: str, cwd=None) -> subprocess.CompletedProcess:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "nas.cli.app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> tuple[Path, Path]:
    """A folder of 24 ONNX files (einspace on digits) with a labels CSV in two groups."""
    from nas.bench.labelled import load_benchmark

    folder = tmp_path_factory.mktemp("zoo")
    rows = load_benchmark(ROOT / "benchmarks" / "results" / "bench_einspace_digits.jsonl.gz").trained()[:24]
    lines = ["file,accuracy,group,notes"]
    for i, row in enumerate(rows):
        (folder / "models").mkdir(exist_ok=True)
        (folder / "models" / f"m{i}.onnx").write_bytes(row.onnx)
        lines.append(f"models/m{i}.onnx,{row.val_acc},{'a' if i % 2 else 'b'},x")
    labels = folder / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    return folder, labels


def test_fit_on_a_folder_of_onnx_files_records_what_it_learned_from(zoo, tmp_path) -> None:
    folder, labels = zoo
    out = nas("predictor", "fit", "--onnx-dir", str(folder), "--labels", str(labels), "--out", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    assert "trained on 24 architectures" in out.stdout
    meta = json.loads((tmp_path / "p.json").read_text())
    assert meta["trained_on"] == {"a": 12, "b": 12}
    assert {s["group"] for s in meta["provenance"]["sources"]} == {"a", "b"}
    info = nas("predictor", "info", str(tmp_path / "p.json"))
    assert info.returncode == 0, info.stderr
    assert "  a: 12" in info.stdout and "  b: 12" in info.stdout and "labels.csv" in info.stdout
    as_json = json.loads(nas("predictor", "info", str(tmp_path / "p"), "--json").stdout)
    assert as_json["trained_on"] == {"a": 12, "b": 12} and as_json["examples"] == 24


def test_info_of_the_default_names_every_corpus_it_learned_from() -> None:
    from predictors.onnx_net.predictor import DEFAULT_DIR

    out = nas("predictor", "info")
    assert out.returncode == 0, out.stderr
    meta = json.loads((DEFAULT_DIR / "default.json").read_text())
    groups = meta.get("trained_on") or {}
    assert groups and all(f"  {g}: {n}" in out.stdout for g, n in groups.items())


@pytest.mark.parametrize(("csv", "message"), [
    ("name,accuracy\nm0.onnx,0.5\n", "column 'file' is missing"),
    ("file,acc\nmodels/m0.onnx,0.5\n", "column 'accuracy' is missing"),
    ("file,accuracy\nmodels/m0.onnx,0.5\nmodels/absent.onnx,0.4\n", "labels.csv:3: .*absent.onnx does not exist"),
    ("file,accuracy\nmodels/m0.onnx,0.5\nmodels/m1.onnx,high\n", "labels.csv:3: accuracy 'high' is not a number"),
    ("file,accuracy\nmodels/m0.onnx,0.5\nmodels/m1.onnx,nan\n", "labels.csv:3: accuracy nan is not finite"),
    ("file,accuracy\nmodels/m0.onnx,0.5\n", "1 labelled file"),
])
def test_bad_labels_are_one_error_line_and_exit_code_2(zoo, tmp_path, csv, message) -> None:
    import re

    folder, _ = zoo
    labels = tmp_path / "labels.csv"
    labels.write_text(csv)
    out = nas("predictor", "fit", "--onnx-dir", str(folder), "--labels", str(labels), "--out", str(tmp_path / "p"))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0]), out.stderr
    assert not (tmp_path / "p.json").exists()


def test_a_file_that_is_not_onnx_is_named(zoo, tmp_path) -> None:
    folder, _ = zoo
    (folder / "models" / "broken.onnx").write_bytes(b"\x00not onnx\xff" * 8)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,accuracy\nmodels/m0.onnx,0.5\nmodels/broken.onnx,0.4\n")
    out = nas("predictor", "fit", "--onnx-dir", str(folder), "--labels", str(labels), "--out", str(tmp_path / "p"))
    assert out.returncode == 2 and out.stderr.startswith("error: model 1: not an ONNX model"), out.stderr


def test_info_of_a_tampered_file_is_one_error_line(tmp_path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"format": "onnx-net-predictor", "version": 2, "config": {}}))
    out = nas("predictor", "info", str(tmp_path / "p"))
    assert out.returncode == 2 and out.stderr.strip() == f"error: {tmp_path / 'p.json'}: key 'input_width' is missing"


@pytest.mark.slow
def test_fit_on_corpora_then_eval_writes_json_and_markdown(small_corpora: dict[str, Path], tmp_path: Path) -> None:
    macro, nats = str(small_corpora["nb-macro"]), str(small_corpora["nats-sss-cifar10"])
    out = nas("predictor", "fit", "-c", macro, "-c", nats, "--out", str(tmp_path / "p"), "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert "trained on 80 architectures" in out.stdout
    meta = json.loads((tmp_path / "p.json").read_text())
    assert meta["trained_on"] == {"nb-macro/cifar10/nas-bench-macro": 40,
                                  "nats-sss/cifar10/nats-bench-sss": 40}
    scores, md = tmp_path / "scores.json", tmp_path / "scores.md"
    out = nas("predictor", "eval", "-c", macro, "-c", nats, "--protocol", "random,zero-shot", "--seeds", "1",
              "--json", str(scores), "--md", str(md))
    assert out.returncode == 0, out.stderr
    report = json.loads(scores.read_text())
    assert report["corpora"] == meta["trained_on"]
    assert {s["protocol"] for s in report["scores"]} == {"random", "zero-shot"}
    text = md.read_text()
    assert "## random" in text and "## zero-shot" in text and "## few-shot" not in text


@pytest.mark.parametrize("args, message", [
    (["fit", "--out", "p"], "nothing to learn from"),
    (["fit", "--onnx-dir", "."], "--onnx-dir and --labels go together"),
    (["eval", "-c", "missing.jsonl.gz"], "missing.jsonl.gz"),
])
def test_bad_predictor_commands_fail_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    out = nas("predictor", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and message in out.stderr.splitlines()[0]
