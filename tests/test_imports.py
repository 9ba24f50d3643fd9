"""Layering: the grammar layer is importable without torch, onnx or networkx."""

from __future__ import annotations

import subprocess
import sys


def test_search_spaces_does_not_import_torch() -> None:
    code = ("import sys, search_spaces; d = search_spaces.get_space('einspace', (3, 8, 8)).sample(0); "
            "print(sorted(m for m in ('torch', 'onnx', 'networkx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
