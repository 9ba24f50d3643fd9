"""The op catalogue of the graph IR, re-exported from :mod:`search_spaces.ops`, where it lives.

The shape rules, parameter counts and FLOPs are pure Python and are what the grammar's terminals emit, so they sit
in the bottom layer; :mod:`nas` builds on them. Import from either module.
"""

from __future__ import annotations

from search_spaces.ops import (
    FREE_OPS,
    OPS,
    OpSpec,
    Shape,
    ShapeError,
    im2col_grid,
    infer_shapes,
    op_cost,
    op_spec,
    window_out_len,
)

__all__ = ["FREE_OPS", "OPS", "OpSpec", "Shape", "ShapeError", "im2col_grid", "infer_shapes", "op_cost", "op_spec",
           "window_out_len"]
