"""The `nas` console script, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest

from nas.export.onnx import load_onnx

REQUIRED = {"file", "hash", "params", "flops", "depth", "derivation", "arch"}


def nas(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli.app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_spaces_lists_builtin_spaces() -> None:
    result = nas("spaces")
    assert result.returncode == 0
    assert "einspace" in result.stdout and "einspace-1d" in result.stdout


def test_sample_writes_onnx_and_summary(tmp_path) -> None:
    out = tmp_path / "cands"
    result = nas("sample", "--space", "einspace", "--input-shape", "3,32,32", "--num-classes", "10", "-n", "6",
                 "--seed", "0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert REQUIRED <= set(row)
        model = load_onnx(out / row["file"])
        onnx.checker.check_model(model, full_check=True)
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["hash"] == row["hash"] and meta["derivation"] == row["derivation"]
    again = tmp_path / "again"
    nas("sample", "-n", "6", "--seed", "0", "--out", str(again))
    assert (again / "summary.jsonl").read_text() == (out / "summary.jsonl").read_text()  # deterministic


def test_sample_named_architectures(tmp_path) -> None:
    arch_file = tmp_path / "archs.txt"
    arch_file.write_text("(sequential norm leaky_relu)\n\n(routing permute[order=(0,2,1)] norm identity)\n")
    out = tmp_path / "named"
    result = nas("sample", "--input-shape", "1,8,8", "--arch", "(sequential linear[width=16] norm)",
                 "--arch-file", str(arch_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert [r["derivation"] for r in rows] == ["(sequential linear[width=16] norm)", "(sequential norm leaky_relu)",
                                               "(routing permute[order=(0,2,1)] norm identity)"]


def test_sample_one_dimensional_space(tmp_path) -> None:
    result = nas("sample", "--space", "einspace-1d", "--input-shape", "1,40", "-n", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args, message", [
    (("sample", "--space", "einspaec"), "unknown space 'einspaec' (did you mean 'einspace'?)"),
    (("sample", "--input-shape", "3,32"), "takes C,H,W inputs"),
    (("sample", "--input-shape", "3,a,4"), "comma-separated integers"),
    (("sample", "--arch", "(sequential norm"), "missing ')'"),
    (("sample", "--arch", "(sequential norm foo)"), "'foo' is not an alternative"),
    (("sample", "--max-nodes", "1"), "fits the budget"),
    (("check-grammar", "{bad}"), "cannot read grammar file"),
])
def test_bad_input_gives_one_line_error_and_exit_2(tmp_path, args, message) -> None:
    args = tuple(a.replace("{bad}", str(tmp_path / "missing.grammar")) for a in args)
    result = nas(*args, "--out", str(tmp_path / "o")) if args[0] == "sample" else nas(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr


def test_malformed_grammar_file_names_line_and_column(tmp_path) -> None:
    path = tmp_path / "bad.grammar"
    path.write_text("start net;\nnet -> sequential(mod mod);\n")
    result = nas("check-grammar", str(path))
    assert result.returncode == 2
    assert f"{path}:2:23: unexpected 'mod'" in result.stderr
    result = nas("sample", "--grammar", str(path), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "bad.grammar:2:23" in result.stderr


def test_corrupt_onnx_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match="broken.onnx"):
        load_onnx(path)
