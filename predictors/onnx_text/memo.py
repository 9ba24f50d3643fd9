"""The memo tables of one :class:`~predictors.onnx_text.OnnxTextEncoder` (no module-level state).

Reading a protobuf message field by field from Python costs far more than serializing it, and the same attribute
sets, shapes and constants recur across the nodes of a network and across networks, so their texts are kept,
keyed by the message's serialized bytes (equal bytes are equal messages, hence equal texts), or by the
(type, dims...) of a tensor whose text is its dims. Each table is cleared when it reaches ``max_entries``; keys of
more than ``max_key_bytes`` are not kept, so the memory of one encoder stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MEMO_ENTRIES = 4096
MEMO_KEY_BYTES = 1024


@dataclass
class Memo:
    """Texts already computed by one encoder (see the module docstring)."""

    attrs: dict[tuple[bytes, ...], str] = field(default_factory=dict)                 # attributes -> "{...}"
    shape: dict[bytes, str] = field(default_factory=dict)                             # TypeProto -> "?x16x8x8"
    value: dict[bytes, tuple[str, int, tuple[int, ...]]] = field(default_factory=dict)   # small tensor -> info
    param: dict[tuple[int, ...], tuple[str, int, tuple[int, ...]]] = field(default_factory=dict)  # dims -> info
    stub: dict[tuple[int, ...], bytes] = field(default_factory=dict)                  # dims -> unnamed stub tensor
    node_types: dict[tuple, tuple] = field(default_factory=dict)   # node key -> inferred output types (shape_memo)
    max_entries: int = MEMO_ENTRIES
    max_key_bytes: int = MEMO_KEY_BYTES

    def put(self, table: dict, key: Any, size: int, value: Any) -> Any:
        """Keep ``value`` under ``key`` (of ``size`` bytes) in ``table``, within the limits; return it."""
        if size <= self.max_key_bytes:
            if len(table) >= self.max_entries:
                table.clear()
            table[key] = value
        return value

    def clear(self) -> None:
        """Forget every text."""
        for table in (self.attrs, self.shape, self.value, self.param, self.stub, self.node_types):
            table.clear()

    @property
    def size(self) -> int:
        """Entries over all tables."""
        return (len(self.attrs) + len(self.shape) + len(self.value) + len(self.param) + len(self.stub)
                + len(self.node_types))
