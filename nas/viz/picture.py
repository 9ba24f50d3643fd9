"""Architecture pictures: an :class:`~nas.ir.graph.ArchGraph` drawn as a Graphviz DAG (SVG or PNG).

The picture is meant to stay readable for networks of 50 and more IR nodes:

- **sequential chains are collapsed**: a maximal run of single-input, single-consumer ops becomes one box that
  lists its ops top to bottom (repeated identical ops as ``xN``);
- every op line shows the op's **key parameters** (``conv2d 3x3/2 16→32 g4``, ``linear 64→10``) and the
  tensor shape it produces;
- the **edges carry the tensor shape** that flows along them (the batch dim left out);
- forks (``split``, a value read by several ops) and merges (``add``, ``concat``, ``matmul``) are boxes of their
  own, so that branches and merges are laid out by Graphviz's ``dot`` engine as a layered DAG.

Layout is Graphviz's (https://graphviz.org, through the ``graphviz`` Python binding, which runs the ``dot``
executable of Debian's ``graphviz`` package); nothing here places coordinates by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.ir.graph import ArchGraph
from nas.ir.ops import Shape

__all__ = ["PICTURE_FORMATS", "Block", "Picture", "PictureError", "collapse_chains", "op_label", "picture_of",
           "render_picture", "write_picture"]

PICTURE_FORMATS = ("svg", "png")
"""The picture formats :func:`write_picture` writes, chosen by the file's extension."""

MERGE_OPS = frozenset({"add", "concat", "matmul"})
_FAMILY_COLOURS = {  # fill colours by op family (colour-blind-safe pastels from ColorBrewer's Pastel1/Set3)
    "weights": "#cfe2f3", "norm": "#d9ead3", "activation": "#fde9c9", "routing": "#eeeeee",
    "merge": "#e4d7f5", "io": "#ffffff", "pool": "#f4cccc",
}
_FAMILY = {
    "linear": "weights", "conv1d": "weights", "conv2d": "weights", "pos_enc": "weights",
    "batchnorm": "norm", "layernorm": "norm", "instancenorm": "norm", "groupnorm": "norm",
    "relu": "activation", "leaky_relu": "activation", "gelu": "activation", "mish": "activation",
    "hardswish": "activation", "sigmoid": "activation", "softmax": "activation",
    "permute": "routing", "im2col": "routing", "col2im": "routing", "split": "routing", "zero": "routing",
    "add": "merge", "concat": "merge", "matmul": "merge",
    "avg_pool": "pool", "max_pool": "pool", "global_avg_pool": "pool",
    "input": "io", "output": "io",
}
MAX_LINES_PER_BLOCK = 12
"""A collapsed chain longer than this (after folding repeats) shows its first and last ops and a count between."""


class PictureError(NasError, ValueError):
    """A picture could not be made: unknown format, Graphviz missing, or an input that is not an architecture."""


def shape_text(shape: Shape) -> str:
    """A shape as ``32x8x8`` (batch dim left out, as everywhere in the IR)."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


def op_label(op: str, attrs: Mapping[str, Any]) -> str:
    """One op with its key parameters, e.g. ``conv2d 3x3/2 16→32 g4`` or ``linear 64→10``."""
    a = attrs
    if op == "linear":
        return f"linear {a['in_features']}→{a['out_features']}"
    if op == "conv2d":
        text = f"conv2d {a['kernel']}x{a['kernel']}"
        text += f"/{a['stride']}" if a.get("stride", 1) != 1 else ""
        text += f" {a['in_channels']}→{a['out_channels']}"
        groups = a.get("groups", 1)
        if groups == a["in_channels"] == a["out_channels"] and groups > 1:
            text += " depthwise"
        elif groups != 1:
            text += f" g{groups}"
        return text
    if op == "conv1d":
        return f"conv1d k{a['kernel']} {a['in_channels']}→{a['out_channels']}"
    if op in ("avg_pool", "max_pool"):
        return f"{op} {a['kernel']}x{a['kernel']}" + (f"/{a['stride']}" if a.get("stride", 1) != 1 else "")
    if op == "im2col":
        return f"im2col {a['kernel']}x{a['kernel']}" + (f"/{a['stride']}" if a.get("stride", 1) != 1 else "")
    if op == "col2im":
        return f"col2im {a['height']}x{a['width']}"
    if op == "split":
        return f"split {a['k']} on dim {a['dim']}"
    if op == "concat":
        return f"concat dim {a['dim']}"
    if op == "permute":
        return "permute (" + ",".join(str(p) for p in a["perm"]) + ")"
    if op == "global_avg_pool":
        return "global avg pool"
    if op == "groupnorm":
        return f"groupnorm {a['num_groups']} groups"
    if op == "matmul":
        return "matmul" + (f" x{a['scale']:.3g}" if a.get("scale", 1) != 1 else "")
    if op in ("batchnorm", "layernorm", "instancenorm", "pos_enc", "add", "input", "output") or not attrs:
        return op
    return op + " " + " ".join(f"{k}={v}" for k, v in sorted(attrs.items()))


@dataclass(frozen=True)
class Block:
    """One box of the picture: an IR node, or a collapsed chain of them (in order).

    Attributes:
        id: the box's name in the DOT source (``b<first node>``).
        nodes: the IR node ids it stands for.
        lines: one text line per op (repeats folded as ``xN``), each with the shape the op produces.
        family: the colour family (``weights``, ``norm``, ``activation``, ``routing``, ``merge``, ``pool``, ``io``).
        params: trainable parameters of its ops.
    """

    id: str
    nodes: tuple[int, ...]
    lines: tuple[str, ...]
    family: str
    params: int


@dataclass(frozen=True)
class Edge:
    """A value flowing from one box to another, labelled with its shape (and port, for multi-output ops)."""

    src: str
    dst: str
    label: str


@dataclass(frozen=True)
class Picture:
    """The collapsed graph that is drawn: boxes, labelled edges and a title."""

    blocks: tuple[Block, ...]
    edges: tuple[Edge, ...]
    title: str

    def dot(self) -> Any:
        """The :class:`graphviz.Digraph` of this picture (top to bottom, orthogonal-ish splines)."""
        import graphviz

        dot = graphviz.Digraph("architecture", graph_attr={
            "rankdir": "TB", "label": self.title, "labelloc": "t", "fontname": "Helvetica", "fontsize": "12",
            "nodesep": "0.25", "ranksep": "0.35", "splines": "spline", "bgcolor": "white"},
            node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10",
                       "margin": "0.12,0.05", "penwidth": "0.8"},
            edge_attr={"fontname": "Helvetica", "fontsize": "8", "fontcolor": "#555555", "arrowsize": "0.6",
                       "color": "#666666"})
        for b in self.blocks:
            text = "\\l".join(b.lines) + "\\l"  # \l: left-justified lines
            if b.params:
                text += f"{_count(b.params)} params\\r"
            shape = "ellipse" if b.family == "io" else "box"
            dot.node(b.id, text, fillcolor=_FAMILY_COLOURS[b.family], shape=shape,
                     tooltip=f"IR nodes {', '.join(map(str, b.nodes))}")
        for e in self.edges:
            dot.edge(e.src, e.dst, label=" " + e.label)
        return dot


def _count(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def collapse_chains(graph: ArchGraph) -> list[list[int]]:
    """The IR nodes grouped into maximal sequential chains, in topological order.

    Node ``v`` joins the chain of its only input ``u`` when ``u`` has exactly one output value read exactly once
    (by ``v``) and ``v`` reads exactly one value; the input and output nodes and merges (``add``, ``concat``,
    ``matmul``) stay on their own, so every fork and merge of the DAG remains visible.
    """
    g = graph.g
    uses: dict[int, int] = {n: 0 for n in g.nodes}
    for n in g.nodes:
        for src, _ in g.nodes[n]["inputs"]:
            uses[src] += 1
    chain_of: dict[int, list[int]] = {}
    chains: list[list[int]] = []
    for v in range(g.number_of_nodes()):
        data = g.nodes[v]
        inputs = data["inputs"]
        if len(inputs) == 1 and data["op"] not in ("input", "output") and data["op"] not in MERGE_OPS:
            u = inputs[0][0]
            du = g.nodes[u]
            if (du["op"] not in ("input", "output") and du["op"] not in MERGE_OPS and uses[u] == 1
                    and len(du["out_shapes"]) == 1 and u in chain_of):
                chain_of[u].append(v)
                chain_of[v] = chain_of[u]
                continue
        chain = [v]
        chains.append(chain)
        chain_of[v] = chain
    return chains


def _fold(lines: Sequence[str]) -> list[str]:
    """Consecutive equal lines folded into one ``line  xN``; a long result cut in the middle."""
    folded: list[str] = []
    count = 0
    for i, line in enumerate(lines):
        count += 1
        if i + 1 == len(lines) or lines[i + 1] != line:
            folded.append(line if count == 1 else f"{line}  x{count}")
            count = 0
    if len(folded) > MAX_LINES_PER_BLOCK + 2:  # cut only when it hides at least 3 lines
        keep = MAX_LINES_PER_BLOCK // 2
        folded = folded[:keep] + [f"... {len(folded) - 2 * keep} more ..."] + folded[-keep:]
    return folded


def picture_of(graph: ArchGraph, *, title: str | None = None) -> Picture:
    """The collapsed, labelled picture of ``graph`` (see the module docstring)."""
    g = graph.g
    blocks: list[Block] = []
    block_of: dict[int, str] = {}
    for chain in collapse_chains(graph):
        bid = f"b{chain[0]}"
        lines = []
        for n in chain:
            data = g.nodes[n]
            if data["op"] == "input":
                lines.append(f"input {shape_text(data['out_shapes'][0])}")
            elif data["op"] == "output":
                lines.append(f"output {shape_text(data['in_shapes'][0])}")
            elif len(chain) > 1 and len(data["out_shapes"]) == 1:
                lines.append(f"{op_label(data['op'], data['attrs'])}  → {shape_text(data['out_shapes'][0])}")
            else:
                lines.append(op_label(data["op"], data["attrs"]))
        families = [_FAMILY.get(g.nodes[n]["op"], "routing") for n in chain]
        params = sum(int(g.nodes[n]["params"]) for n in chain)
        heaviest = max(chain, key=lambda n: (g.nodes[n]["params"], -chain.index(n)))
        family = _FAMILY.get(g.nodes[heaviest]["op"], "routing") if params else families[0]
        blocks.append(Block(bid, tuple(chain), tuple(_fold(lines)), family, params))
        for n in chain:
            block_of[n] = bid
    edges: list[Edge] = []
    for v in range(g.number_of_nodes()):
        data = g.nodes[v]
        for src, port in data["inputs"]:
            if block_of[src] == block_of[v]:
                continue
            src_data = g.nodes[src]
            label = shape_text(src_data["out_shapes"][port])
            if len(src_data["out_shapes"]) > 1:
                label = f"[{port}] {label}"
            edges.append(Edge(block_of[src], block_of[v], label))
    if title is None:
        title = (f"{graph.meta.get('space', 'architecture')}: {graph.g.number_of_nodes() - 2} ops, "
                 f"{graph.num_params():,} params, {graph.flops():,} FLOPs, depth {graph.depth()}")
    return Picture(tuple(blocks), tuple(edges), title)


def render_picture(graph: ArchGraph, fmt: str = "svg", *, title: str | None = None, dpi: int = 110) -> bytes:
    """The picture of ``graph`` as ``svg`` or ``png`` bytes, laid out by Graphviz's ``dot``.

    Raises:
        PictureError: ``fmt`` is not ``svg``/``png``, or Graphviz's ``dot`` executable is missing.
    """
    import graphviz

    fmt = fmt.lower().lstrip(".")
    if fmt not in PICTURE_FORMATS:
        raise PictureError(f"unsupported picture format {fmt!r}: use .svg or .png")
    dot = picture_of(graph, title=title).dot()
    if fmt == "png":
        dot.graph_attr["dpi"] = str(dpi)
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise PictureError("Graphviz's `dot` executable was not found: install Graphviz (Debian: "
                           "apt-get install graphviz)") from None


def write_picture(graph: ArchGraph, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write the picture of ``graph`` to ``path``, as SVG or PNG by its extension; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in PICTURE_FORMATS:
        raise PictureError(f"cannot tell the picture format of {str(path)!r}: its name must end in .svg or .png")
    data = render_picture(graph, suffix, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
