"""Layering: the grammar layer is importable without torch, onnx, networkx or the layers above it (nas,
predictors)."""

from __future__ import annotations

import subprocess
import sys


def test_search_spaces_imports_neither_torch_nor_nas() -> None:
    code = ("import sys, search_spaces; d = search_spaces.get_space('einspace', (3, 8, 8)).sample(0); "
            "print(sorted(m for m in ('torch', 'onnx', 'networkx', 'onnxruntime', 'nas', 'predictors') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
