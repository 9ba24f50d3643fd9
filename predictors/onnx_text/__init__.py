"""A deterministic, renaming-invariant text encoding of any ONNX graph (after ONNX-Net, Qin et al. 2025).

::

    from predictors.onnx_text import OnnxTextEncoder, encode_onnx, encode_lines, graph_stats, OnnxTextError

    text = encode_onnx("cand.onnx")                    # a path, raw bytes or an onnx.ModelProto
    text = encode_onnx(model, variant="compact")       # repeated lines / blocks collapsed
    graph_stats(model)                                 # GraphStats(num_nodes=..., depth=..., num_params=..., ...)
    encoder = OnnxTextEncoder()                        # keeps its memo tables: use one for many models
    encoder.encode_lines(model, variant="relative")

The text says what the network computes and nothing about how its file happens to be written: renaming every
tensor and node, or reordering the node list, gives the same text. Only ``numpy`` and ``onnx`` are needed.

The package has one module per step: :mod:`~.loading` (path, bytes or ModelProto), :mod:`~.analysis` (the graph
read once into lists, checked to be a DAG), :mod:`~.order` (canonical order), :mod:`~.wire` (the weight-free copy
written in protobuf's wire format, for shape inference), :mod:`~.values` (texts of constants, attributes and
shapes), :mod:`~.shape_memo` (shape inference memoised per node), :mod:`~.render` (lines and variants), and
:mod:`~.encoder` (:class:`OnnxTextEncoder`, which owns the memo tables, :mod:`~.memo`). The module-level
functions below use a fresh encoder per call.

Encoding rules ("chain" variant)
--------------------------------
1. **Shapes.** ``onnx.shape_inference.infer_shapes`` runs first (on a copy without the large weights, so it costs
   well under a millisecond; an encoder that has met every node of the model before, with the same op, attributes
   and input types, takes the types from its memo and gives the same shapes without running it); if it fails,
   the declared ``value_info`` is used and values without one are written with the unknown shape ``*``. A shape is written ``1x16x32x32``; a dynamic / symbolic dim (the exporter's batch
   dim ``batch``) is written ``?``; a rank-0 tensor is written ``scalar``.
2. **Graph input.** Written as its shape wherever it is used: ``Input:?x3x32x32`` (``Input1:...``, ``Input2:...``
   in graph order when there are several).
3. **Constants.** Initializers and ``Constant``-node outputs are folded into the arguments of the node that uses
   them; ``Constant`` nodes are not nodes of the text. A weight is written ``Param[16,3,3,3]`` (its dims). A
   constant whose *value* shapes the architecture is written by value: every rank-0 tensor (``Const(0.5)``) and
   every one-element tensor of any type (``Const[0]``: NAS-Bench-201's ``none`` edge, ``Mul(x, 0)``, must not
   read as a learnable scale) and every integer or bool tensor with at most 8 elements (Reshape's shape,
   Unsqueeze's axes, Pad's pads: ``Const[0,-1]``, nested brackets for rank >= 2); an empty tensor is
   ``Const[]``. Larger integer tensors are ``Param[...]``, and so is a small constant whose data cannot be read (external or stripped:
   ``Param[]`` for a scalar). An absent optional input (``""``) is ``None``; trailing absent inputs are dropped. Tensor
   names are never written.
4. **Order.** Nodes are sorted topologically (Kahn's algorithm). A chain is always continued first (rule 5).
   Otherwise, among the ready nodes the one consuming the most recently produced value goes first (a
   depth-first walk), ties broken by a canonical key: the node's op, attributes and constant arguments; the
   positions of its inputs in the order so far; a Weisfeiler-Lehman colour of its downstream structure up to 6
   hops (order-preserving, so repeated cells are ordered alike); a stable hash of its whole downstream
   structure. Only nodes identical under all of that (in practice, interchangeable ones) fall back to their
   position in the file. Written values get canonical ids ``V1, V2, ...`` in the order they are written, so
   the text depends neither on tensor/node names nor on the node order of the file.
5. **Chains.** A node with exactly one non-constant input and one output continues the chain of the node just
   before it when its input is that node's output and nothing else uses that value (and it is not a graph
   output). A chain's first node names its input (``V2`` or ``Input:...``), the following nodes omit it
   (``--> Relu -->``; if the chained value is not the node's first input, its slot is written ``_``, as in
   ``Sub(Const(1), _)``). A chain ends with its output value and shape, ``--> V3:?x16x32x32``. Every other node
   (several non-constant inputs: Add, Concat, MatMul of two activations; none; several outputs) is a line of
   its own: ``Add(V3, V5) --> V6:?x16x32x32``, ``Split(V6, Const[8,8]){axis=1} --> V7:?x8x4x4, V8:?x8x4x4``.
6. **Attributes.** All of them, sorted by name, in braces after the arguments: ints as ints, floats with
   ``format(x, ".6g")`` (so a float32 ``1e-5`` is ``1e-05``), lists in brackets, strings as they are, tensors
   as in rule 3, a subgraph as ``Graph(nodes=K,ops=[...])`` (its op types, sorted; subgraphs are summarised,
   not encoded). Ops outside the default domain are written ``domain.Op``.
7. **Outputs.** One last line per graph output, in graph order: ``Output(V9) --> ?x10``.

Worked example (the network of ``tests/predictors/test_onnx_text.py``: a Conv-BN-Relu stem, a Conv-BN branch added back
to the stem, global average pooling and a classifier)::

    Conv(Input:?x3x8x8, Param[8,3,3,3], Param[8]){dilations=[1,1],group=1,kernel_shape=[3,3],pads=[1,1,1,1],strides=[1,1]} --> BatchNormalization(Param[8], Param[8], Param[8], Param[8]){epsilon=1e-05,momentum=0.9} --> Relu --> V1:?x8x8x8
    Conv(V1, Param[8,8,3,3]){dilations=[1,1],group=1,kernel_shape=[3,3],pads=[1,1,1,1],strides=[1,1]} --> BatchNormalization(Param[8], Param[8], Param[8], Param[8]){epsilon=1e-05,momentum=0.9} --> V2:?x8x8x8
    Add(V1, V2) --> V3:?x8x8x8
    GlobalAveragePool(V3) --> Flatten{axis=1} --> Gemm(Param[10,8], Param[10]){alpha=1,beta=1,transB=1} --> V4:?x10
    Output(V4) --> ?x10

"relative" and "compact" variants
---------------------------------
``relative`` writes the same lines with *relative* value ids, so that a repeated cell reads the same every time it occurs: in a
line, ``V-1`` is the value most recently defined before that line, ``V-2`` the one before it, and the values
the line itself defines are ``V+1``, ``V+2`` (``Input:...`` and constants are unchanged): a line then says
how far back its inputs were made, so a bag of such lines still holds the wiring. ``compact`` then, scanning
greedily from the top, a block of 1 to 32 consecutive lines that repeats back-to-back ``n >= 2`` times is
written once: a single line as ``n x [line]``, a longer block as ``n x [``, its lines indented by two spaces
(blocks are compacted again inside), ``]``. At each position the repeat saving the most lines wins (ties: the
shorter block), unless a repeat starting inside it would save more. Expanding every group and turning the
relative ids back into ``V1, V2, ...`` gives the chain text exactly. For example, a stem and six identical
residual blocks (two Conv-BN-Relu branches summed, plus a skip) become (attributes shortened here)::

    Conv(Input:?x3x8x8, Param[8,3,3,3]){...} --> BatchNormalization(...){epsilon=1e-05,momentum=0.9} --> Relu --> V+1:?x8x8x8
    6 x [
      Conv(V-1, Param[8,8,1,1]){...} --> BatchNormalization(...){epsilon=1e-05,momentum=0.9} --> Relu --> V+1:?x8x8x8
      Conv(V-2, Param[8,8,3,3]){...} --> BatchNormalization(...){epsilon=1e-05,momentum=0.9} --> Relu --> V+1:?x8x8x8
      Add(V-1, V-2) --> V+1:?x8x8x8
      Add(V-1, V-4) --> V+1:?x8x8x8
    ]
    Output(V-1) --> ?x8x8x8

where the chain variant has 26 lines. An NB-201 network (3 stages of 5 identical cells) shrinks about 3x.

Errors
------
:class:`OnnxTextError` (a ``ValueError``) names the problem: bytes or a file that do not parse as an ONNX
ModelProto (``not an ONNX model: ...``), a path that does not exist, a model without a graph or without nodes,
a node that consumes a tensor nothing defines, a tensor defined twice, a cycle, and an argument that is not a
path, bytes or ModelProto.
"""

from __future__ import annotations

from predictors.onnx_text.analysis import GraphStats
from predictors.onnx_text.encoder import OnnxTextEncoder, TextEncoding
from predictors.onnx_text.errors import OnnxTextError
from predictors.onnx_text.loading import ModelLike, load_model
from predictors.onnx_text.render import VARIANTS

__all__ = ["VARIANTS", "GraphStats", "ModelLike", "OnnxTextEncoder", "OnnxTextError", "TextEncoding",
           "encode_lines", "encode_onnx", "encode_with_shapes", "graph_stats", "load_model"]


def encode_lines(model: ModelLike, *, variant: str = "chain") -> list[str]:
    """The text of ``model`` as a list of lines (see the package docstring for the rules).

    Args:
        model: a file path, the serialized bytes, or an ``onnx.ModelProto`` (not modified).
        variant: ``"chain"`` (one line per chain of nodes), ``"relative"`` (the same lines with relative value
            ids) or ``"compact"`` (relative value ids, repeated lines and blocks collapsed into ``n x [...]``).

    Raises:
        OnnxTextError: the model cannot be read or its graph is not a valid DAG.
        ValueError: unknown ``variant``.
    """
    return OnnxTextEncoder().encode_lines(model, variant=variant)


def encode_with_shapes(model: ModelLike, *, variant: str = "chain") -> tuple[list[str], dict[str, str]]:
    """:func:`encode_lines` and the inferred shape text of every value (``{name: "?x16x8x8"}``), from one
    shape inference."""
    return OnnxTextEncoder().encode_with_shapes(model, variant=variant)


def encode_onnx(model: ModelLike, *, variant: str = "chain") -> str:
    """The text of ``model``: ``"\\n".join(encode_lines(model, variant=variant))``."""
    return OnnxTextEncoder().encode_onnx(model, variant=variant)


def graph_stats(model: ModelLike) -> GraphStats:
    """Node count, depth, parameter count and op histogram of ``model`` (no shape inference; cheap)."""
    return OnnxTextEncoder().graph_stats(model)
