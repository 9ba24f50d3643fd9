"""Pictures and reports: architecture pictures (Graphviz), pictures in optuna-dashboard, the HTML search report.

- :func:`~nas.viz.picture.write_picture` / :func:`~nas.viz.picture.render_picture`: an ArchGraph as SVG or PNG;
- :func:`~nas.viz.source.resolve`: what ``nas show ARCH`` draws (derivation, architecture string, hash, ONNX);
- :func:`~nas.viz.dashboard.attach_picture`: a trial's picture artifact and note for optuna-dashboard;
- :func:`~nas.viz.report.write_report`: ``nas search report NAME --out report.html``.

Names load lazily (the store imports :mod:`nas.viz.dashboard` and should not pay for Graphviz or plotly).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"PictureError": "picture", "picture_of": "picture", "render_picture": "picture",
          "write_picture": "picture", "ArchitectureView": "source", "resolve": "source",
          "attach_picture": "dashboard", "write_report": "report", "build_report": "report"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"nas.viz.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'nas.viz' has no attribute {name!r}")
