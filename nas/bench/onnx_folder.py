"""A labelled folder of ONNX files (ONNX-Bench, a model zoo) for ``nas predictor fit --onnx-dir DIR --labels CSV``.

The CSV has a header row with the columns ``file`` (a path relative to the folder), ``accuracy`` (any scale:
only the order within a group matters) and optionally ``group`` (the ranking group: rows are only compared
within one; default: the folder's name). Other columns are ignored. Every problem is an
:class:`OnnxFolderError` naming the CSV line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path


class OnnxFolderError(ValueError):
    """The labels file or the folder does not fit the format above."""


@dataclass(frozen=True)
class OnnxFolder:
    """The labelled files of a folder, in CSV order."""

    files: list[Path]
    accuracies: list[float]
    groups: list[str]


def read_onnx_folder(folder: str | Path, labels: str | Path) -> OnnxFolder:
    """Read ``labels`` (see the module docstring) against the ONNX files of ``folder``."""
    folder, labels = Path(folder), Path(labels)
    if not folder.is_dir():
        raise OnnxFolderError(f"--onnx-dir {folder} is not a directory")
    if not labels.is_file():
        raise OnnxFolderError(f"labels file {labels} does not exist")
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise OnnxFolderError(f"{labels} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    missing = [c for c in ("file", "accuracy") if c not in columns]
    if missing:
        raise OnnxFolderError(f"{labels}: column {missing[0]!r} is missing (header: {', '.join(columns) or 'empty'}; "
                              "need file, accuracy and optionally group)")
    files, accuracies, groups = [], [], []
    for line, row in enumerate(reader, start=2):
        name = (row.get("file") or "").strip()
        if not name:
            raise OnnxFolderError(f"{labels}:{line}: empty 'file'")
        path = folder / name
        if not path.is_file():
            raise OnnxFolderError(f"{labels}:{line}: {path} does not exist")
        try:
            acc = float(row.get("accuracy") or "")
        except ValueError:
            raise OnnxFolderError(f"{labels}:{line}: accuracy {row.get('accuracy')!r} is not a number") from None
        if not math.isfinite(acc):
            raise OnnxFolderError(f"{labels}:{line}: accuracy {acc} is not finite (drop failed runs)")
        group = (row.get("group") or "").strip() or folder.resolve().name
        files.append(path)
        accuracies.append(acc)
        groups.append(group)
    if len(files) < 2:
        raise OnnxFolderError(f"{labels}: {len(files)} labelled file(s); fitting needs at least 2")
    return OnnxFolder(files, accuracies, groups)
