"""What ``nas show`` draws: an architecture given as a derivation string, a space's architecture string, a hash in a
store, or an ONNX file, resolved to its :class:`~nas.ir.graph.ArchGraph`, with a text summary.

Every candidate ONNX file the platform writes carries ``space``, ``derivation``, ``input_shape`` and
``num_classes`` in its ``metadata_props`` (:func:`nas.candidate.build_candidate`), so the graph is rebuilt from
them exactly; an ONNX file without them is refused with a one-line reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.ir.graph import ArchGraph
from nas.viz.picture import PictureError, shape_text

__all__ = ["ArchitectureView", "from_onnx", "from_string", "from_store", "resolve"]

DEFAULT_SPACE = "einspace"
DEFAULT_NUM_CLASSES = 10


@dataclass(frozen=True)
class ArchitectureView:
    """An architecture ready to be shown: its graph and where it came from.

    Attributes:
        graph: the architecture graph (with its classifier head).
        space: the space it belongs to; ``derivation`` its derivation string; ``arch`` the space's standard
            string (``None`` where the space has none).
        hash: the canonical graph hash.
        source: a few words on where it was read from (``derivation``, ``arch string``, ``store``, the ONNX path).
    """

    graph: ArchGraph
    space: str
    derivation: str
    arch: str | None
    hash: str
    source: str

    def summary(self) -> dict[str, Any]:
        """The numbers ``nas show`` prints: ops, params, FLOPs, depth, input/output shapes, ..."""
        g = self.graph
        return {"hash": self.hash, "space": self.space, "source": self.source, "arch": self.arch,
                "derivation": self.derivation, "input_shape": list(g.input_shape),
                "output_shape": list(g.output_shape), "ops": sum(1 for _ in g.op_nodes()),
                "op_histogram": g.op_histogram(), "params": g.num_params(), "flops": g.flops(), "depth": g.depth()}

    def summary_text(self) -> str:
        """:meth:`summary` as a few human-readable lines."""
        s = self.summary()
        ops = ", ".join(f"{op} {n}" for op, n in sorted(s["op_histogram"].items(), key=lambda kv: (-kv[1], kv[0])))
        lines = [f"architecture {s['hash']} ({s['space']}, from {s['source']})"]
        if s["arch"]:
            lines.append(f"  arch:        {s['arch']}")
        lines += [f"  derivation:  {s['derivation']}",
                  f"  input:       {shape_text(tuple(s['input_shape']))}   "
                  f"output: {shape_text(tuple(s['output_shape']))}",
                  f"  params:      {s['params']:,}",
                  f"  FLOPs:       {s['flops']:,}",
                  f"  depth:       {s['depth']} (ops on the longest input->output path)",
                  f"  ops:         {s['ops']} ({ops})"]
        return "\n".join(lines)


def _view(space: Any, derivation: Any, num_classes: int, source: str, hash: str | None = None) -> ArchitectureView:
    from nas.ir.build import build_graph

    graph = build_graph(space, derivation, num_classes)
    return ArchitectureView(graph, space.name, str(derivation), space.arch_string(derivation),
                            hash or graph.canonical_hash(), source)


def from_string(text: str, *, space: str | None = None, input_shape: Sequence[int] | None = None,
                num_classes: int = DEFAULT_NUM_CLASSES) -> ArchitectureView:
    """A derivation string (``(sequential ...)``; space ``einspace`` unless given) or, with ``space``, that
    space's standard architecture string (``02012100`` for ``nb-macro``, ``|nor_conv_3x3~0|+...`` for
    ``nb201``). ``input_shape`` defaults to the space's example input."""
    from search_spaces.spaces import get_space, space_spec

    name = space or DEFAULT_SPACE
    shape = tuple(int(d) for d in (input_shape or space_spec(name).example_input))
    sp = get_space(name, shape)
    is_derivation = text.lstrip().startswith("(")
    derivation = sp.from_arch(text)
    return _view(sp, derivation, num_classes, "derivation" if is_derivation else "arch string")


def from_onnx(model: Any, source: str = "ONNX") -> ArchitectureView:
    """A candidate ONNX model (a path, bytes or ``onnx.ModelProto``) rebuilt from its metadata.

    Raises:
        PictureError: the model has no ``space``/``derivation`` metadata (it was not written by this platform).
    """
    import onnx

    if isinstance(model, (str, os.PathLike)):
        from nas.export.onnx import OnnxLoadError

        path = Path(model)
        if not path.is_file():
            raise OnnxLoadError(f"cannot load ONNX model {path}: no such file")
        try:  # no external data: table-mode candidates are stored without their weights
            model = onnx.load_model(os.fspath(path), load_external_data=False)
        except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise OnnxLoadError(f"cannot load ONNX model {path}: {type(err).__name__}: {err}") from None
        source = str(path)
    elif isinstance(model, (bytes, bytearray)):
        model = onnx.load_model_from_string(bytes(model))
    meta = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in ("space", "derivation") if not meta.get(k)]
    if missing:
        raise PictureError(f"{source} has no {' and '.join(missing)} metadata: only candidate ONNX files written by "
                           "nas (nas sample, nas search export, the store's artifacts) can be drawn")
    from search_spaces.spaces import get_space, space_spec

    if meta.get("input_shape"):
        shape = tuple(int(d) for d in meta["input_shape"].split(","))
    else:
        shape = tuple(space_spec(meta["space"]).example_input)
    sp = get_space(meta["space"], shape)
    num_classes = int(meta.get("num_classes") or DEFAULT_NUM_CLASSES)
    return _view(sp, sp.parse(meta["derivation"]), num_classes, source, meta.get("hash"))


def from_store(hash_prefix: str, db: str) -> ArchitectureView:
    """The architecture with this hash (or unique hash prefix, at least 6 characters) in the store ``db``.

    Raises:
        StoreError: no architecture, or several, match ``hash_prefix``.
    """
    from sqlalchemy import select

    from nas.store import Store, StoreError
    from nas.store.schema import ArchitectureModel

    prefix = hash_prefix.strip().lower()
    if len(prefix) < 6:
        raise StoreError(f"give at least 6 characters of the hash, got {hash_prefix!r}")
    with Store(db, read_only=True) as store:
        with store._session() as session:  # noqa: SLF001 - a prefix look-up the store's API does not offer
            hashes = list(session.scalars(select(ArchitectureModel.hash)
                                          .where(ArchitectureModel.hash.like(prefix + "%")).limit(3)))
        if not hashes:
            raise StoreError(f"no architecture with hash {hash_prefix!r} in {store.display_url}")
        if len(hashes) > 1:
            raise StoreError(f"hash prefix {hash_prefix!r} matches several architectures in {store.display_url} "
                             f"({', '.join(h[:12] for h in hashes)}, ...): give more characters")
        record = store.get_architecture(hashes[0], with_onnx=True)
    assert record.onnx is not None
    view = from_onnx(record.onnx, source="store")
    return view


def resolve(arch: str, *, space: str | None = None, db: str | None = None, input_shape: Sequence[int] | None = None,
            num_classes: int = DEFAULT_NUM_CLASSES) -> ArchitectureView:
    """What ``nas show ARCH`` means by ``arch``: an ONNX file if such a file exists, a hash if ``db`` is given
    and ``arch`` is hexadecimal, else a derivation string or (with ``space``) an architecture string."""
    text = arch.strip()
    if text.lower().endswith(".onnx") or (len(text) < 4096 and os.path.isfile(text)):
        return from_onnx(text)
    if db is not None and text and all(ch in "0123456789abcdefABCDEF" for ch in text):
        from nas.store import StoreError

        try:
            return from_store(text, db)
        except StoreError:
            if space is None:  # an all-digit string may also be an architecture string (nb-macro's 02012100)
                raise
    return from_string(text, space=space, input_shape=input_shape, num_classes=num_classes)
