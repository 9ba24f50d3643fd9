"""``OnnxTextEncoder``: one object that turns ONNX models into text, owning the memo tables it reuses."""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from predictors.onnx_text.analysis import Graph, GraphStats, analyse, file_topo_order, stats_of
from predictors.onnx_text.errors import OnnxTextError
from predictors.onnx_text.loading import ModelLike, load_model
from predictors.onnx_text.memo import MEMO_ENTRIES, Memo
from predictors.onnx_text.order import canonical_order
from predictors.onnx_text.render import VARIANTS, Line, build_lines, render
from predictors.onnx_text.wire import infer_shapes


@dataclass(frozen=True)
class TextEncoding:
    """Everything one pass over a model gives: its text lines, the inferred shape text of every value
    (``{name: "?x16x8x8"}``) and its :class:`GraphStats` (whose depth is taken over the canonical order); ``graph``
    is the analysed graph the text was written from (:class:`~predictors.onnx_text.analysis.Graph`), for callers
    that compute more from it (the predictor's FLOPs) without reading the protobuf again."""

    lines: list[str]
    shapes: dict[str, str]
    stats: GraphStats
    graph: Graph | None = field(default=None, repr=False, compare=False)


class OnnxTextEncoder:
    """Writes ONNX models as text (rules in :mod:`predictors.onnx_text`).

    ::

        encoder = OnnxTextEncoder()
        encoder.encode_lines("a.onnx")                 # chain variant
        encoder.encode_lines(model, variant="relative")
        encoder.encode(model_bytes).stats.depth        # lines, shapes and stats from one pass

    The encoder keeps memo tables of the texts of attributes, shapes and constants it has met (bounded: see
    :mod:`predictors.onnx_text.memo`), so one encoder used for many models of a space is much faster than a
    fresh one per model. The text never depends on what the memo holds. Not thread-safe: one encoder per thread.
    """

    def __init__(self, memo_entries: int = MEMO_ENTRIES) -> None:
        self.memo = Memo(max_entries=memo_entries)

    def _build(self, model: ModelLike) -> tuple[onnx.ModelProto, Graph, list[int], list[Line], dict[str, str]]:
        proto = load_model(model)
        try:
            gr = analyse(proto, self.memo)
            order, succ = canonical_order(gr)
            shapes = infer_shapes(proto, gr, order, self.memo)
            lines = build_lines(gr, order, succ, shapes, [vi.name for vi in proto.graph.output])
        except OnnxTextError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, UnicodeError, RecursionError) as err:
            # a message whose fields parse but do not fit together (fuzzed or hand-edited files)
            raise OnnxTextError(f"malformed ONNX model ({type(err).__name__}: {err})") from None
        return proto, gr, order, lines, shapes

    def encode(self, model: ModelLike, *, variant: str = "chain") -> TextEncoding:
        """Lines, shapes and stats of ``model`` (see :class:`TextEncoding`).

        Raises:
            OnnxTextError: the model cannot be read or its graph is not a valid DAG.
            ValueError: unknown ``variant``.
        """
        _check_variant(variant)
        _, gr, order, lines, shapes = self._build(model)
        return TextEncoding(render(lines, variant), shapes, stats_of(gr, order), gr)

    def encode_lines(self, model: ModelLike, *, variant: str = "chain") -> list[str]:
        """The text of ``model`` as a list of lines (``variant``: one of :data:`VARIANTS`)."""
        return self.encode_with_shapes(model, variant=variant)[0]

    def encode_with_shapes(self, model: ModelLike, *, variant: str = "chain") -> tuple[list[str], dict[str, str]]:
        """:meth:`encode_lines` and the inferred shape text of every value, from one shape inference."""
        _check_variant(variant)
        _, _, _, lines, shapes = self._build(model)
        return render(lines, variant), shapes

    def encode_onnx(self, model: ModelLike, *, variant: str = "chain") -> str:
        """``"\\n".join(self.encode_lines(model, variant=variant))``."""
        return "\n".join(self.encode_lines(model, variant=variant))

    def graph_stats(self, model: ModelLike) -> GraphStats:
        """Node count, depth, parameter count and op histogram of ``model`` (no shape inference; cheap)."""
        proto = load_model(model)
        try:
            gr = analyse(proto, self.memo)
            return stats_of(gr, file_topo_order(gr))
        except OnnxTextError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, UnicodeError, RecursionError) as err:
            raise OnnxTextError(f"malformed ONNX model ({type(err).__name__}: {err})") from None


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
