"""The golden record of what the ONNX encoding path gives, for tests/predictors/test_encoding_golden.py.

Written once from the tree at 5ed0cc7 (before the encoder was made faster), and never by the code under test::

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python tests/predictors/encoding_golden.py   # -> data/encoding_golden.json

For a fixed sample of every built-in space (``SAMPLES`` seeds each, ONNX files *with* weights, the torch seed
fixed per model) it records digests of everything the shipped priors and the committed catalogue features read:
the three text variants, the inferred shapes and graph stats, the predictor input (:class:`EncodedGraph`, both
variants, from bytes and from a ``ModelProto``), the GRAF-lite vector and the default predictor's feature row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "data" / "encoding_golden.json"
#: every built-in space and the input shape the benchmarks use for it (benchmarks/predictor.py's SPEED_SPACES)
SPACES = {"einspace": (3, 32, 32), "einspace-1d": (1, 40), "nb201": (3, 32, 32), "nb-macro": (3, 32, 32),
          "nats-sss": (3, 32, 32), "hnb201": (3, 32, 32), "hnb201-shared": (3, 32, 32),
          "hnb201-einspace": (3, 32, 32), "seq-templates": (1, 40)}
SAMPLES = 6


def digest(value: Any) -> str:
    """sha256 of a JSON value (floats written by ``repr``, so exact) or of a float64 array's bytes."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value, dtype=np.float64).tobytes()
    else:
        data = json.dumps(value, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def build(space_name: str, seed: int) -> tuple[str, bytes]:
    """The canonical hash and the serialized ONNX file (with weights) of sample ``seed`` of ``space_name``."""
    import torch

    from nas.candidate import build_candidate
    from search_spaces import get_space

    space = get_space(space_name, SPACES[space_name])
    torch.manual_seed(seed)
    with torch.no_grad():
        cand = build_candidate(space, space.sample(seed=seed), 10, check=False)
    return cand.hash, cand.onnx_model.SerializeToString()


def record(data: bytes) -> dict[str, str]:
    """The digests of one model's encodings (see the module docstring)."""
    from dataclasses import asdict

    import onnx

    from predictors import OnnxNetPredictor
    from predictors.onnx_net.features import graph_features
    from predictors.onnx_net.predictor import encode_graph
    from predictors.onnx_text import OnnxTextEncoder

    proto = onnx.ModelProto()
    proto.ParseFromString(data)
    text = OnnxTextEncoder()
    encoding = text.encode(data)
    graph = encode_graph(data)
    default = OnnxNetPredictor.default()
    return {
        "chain": digest(text.encode_lines(data, variant="chain")),
        "relative": digest(text.encode_lines(proto, variant="relative")),
        "compact": digest(text.encode_lines(data, variant="compact")),
        "shapes": digest(encoding.shapes),
        "stats": digest(asdict(encoding.stats)),
        "graph_stats": digest(asdict(text.graph_stats(data))),
        "encoded": digest(graph.to_json()),
        "encoded_from_proto": digest(encode_graph(proto).to_json()),
        "encoded_chain": digest(encode_graph(data, variant="chain").to_json()),
        "graf_lite": digest(graph_features(proto)),
        "default_features": digest(default.features([graph])[0]),
    }


def main() -> None:
    import subprocess

    out: dict[str, Any] = {"commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                                    check=True).stdout.strip(), "models": []}
    for space in SPACES:
        for seed in range(SAMPLES):
            canonical, data = build(space, seed)
            out["models"].append({"space": space, "seed": seed, "hash": canonical, **record(data)})
            print(space, seed, flush=True)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
