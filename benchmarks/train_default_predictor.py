"""Train the pretrained predictor that ships inside the package (``OnnxNetPredictor.default()``).

    python benchmarks/predictor_corpus.py          # encode the labelled corpora first
    python benchmarks/train_default_predictor.py   # -> predictors/onnx_net/pretrained/default.{json,safetensors}

It learns from every corpus under benchmarks/results/predictor/ (the platform's labelled benchmarks of several
spaces plus NAS-Bench-Macro), one ranking group per space, with the default configuration.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CORPORA = ROOT / "results" / "predictor"


def main() -> None:
    import torch

    from nas.bench.predictor_corpus import load_corpus
    from predictors import OnnxNetPredictor
    from predictors.onnx_net.predictor import DEFAULT_DIR

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR / "default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpora = [load_corpus(p) for p in sorted(CORPORA.glob("*.jsonl.gz"))]
    graphs = [r.graph for c in corpora for r in c.rows]
    acc = [r.acc for c in corpora for r in c.rows]
    groups = [c.name for c in corpora for _ in c.rows]
    t = time.perf_counter()
    predictor = OnnxNetPredictor(seed=args.seed).fit(graphs, acc, groups=groups, verbose=True)
    json_path, weights = predictor.save(args.out)
    print(f"trained on {len(acc)} architectures from {[c.name for c in corpora]} in {time.perf_counter() - t:.0f} s")
    print(f"wrote {json_path} and {weights} ({weights.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
