"""One candidate through the whole backbone: derivation -> graph -> torch module -> ONNX.

The ONNX file is the candidate's identity: it carries the space, the derivation string and the canonical hash
in ``metadata_props``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx

from nas.compile.torch import GraphModule, compile_graph
from nas.export.onnx import export_onnx
from nas.ir.build import build_graph
from nas.ir.graph import ArchGraph
from search_spaces.derivation import Derivation
from search_spaces.spaces import Space


@dataclass(frozen=True)
class Candidate:
    """A built architecture: its derivation, graph, module, ONNX model and summary numbers."""

    space: str
    derivation: Derivation
    graph: ArchGraph
    module: GraphModule
    onnx_model: onnx.ModelProto
    hash: str
    arch: str | None

    @property
    def params(self) -> int:
        return self.graph.num_params()

    @property
    def flops(self) -> int:
        return self.graph.flops()

    def summary(self) -> dict[str, Any]:
        return {"hash": self.hash, "params": self.params, "flops": self.flops, "depth": self.derivation.depth,
                "graph_depth": self.graph.depth(), "nodes": self.derivation.cost.nodes,
                "derivation": str(self.derivation), "arch": self.arch, "space": self.space,
                "input_shape": list(self.graph.input_shape), "output_type": str(self.derivation.output_type)}


def build_candidate(space: Space, derivation: Derivation, num_classes: int, *, check: bool = True,
                    device: Any = None, weights: bool = True) -> Candidate:
    """Build graph, module and ONNX for ``derivation``; ``check`` runs ``onnx.checker`` (full check).

    ``weights=False`` builds the module on the ``meta`` device (no parameters are initialised) and writes the
    ONNX without weights (:func:`nas.export.onnx.strip_weights`): several times faster and kilobytes instead of
    megabytes, for candidates that are looked up, scored by the predictor or stored but never run (table mode).
    """
    graph = build_graph(space, derivation, num_classes)
    digest = graph.canonical_hash()
    arch = space.arch_string(derivation)
    if weights:
        module = compile_graph(graph, device=device)
    else:
        import torch

        with torch.device("meta"):
            module = compile_graph(graph)
    meta = {"space": space.name, "derivation": str(derivation), "hash": digest,
            "input_shape": ",".join(map(str, graph.input_shape)), "num_classes": str(num_classes)}
    if arch is not None:
        meta["arch"] = arch
    model = export_onnx(graph, module, metadata=meta, weights=weights)
    if check and weights:
        onnx.checker.check_model(model, full_check=True)
    return Candidate(space.name, derivation, graph, module, model, digest, arch)
