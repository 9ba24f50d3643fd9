"""Train the pretrained predictor that ships inside the package (``OnnxNetPredictor.default()``).

    python benchmarks/predictor_corpus.py          # encode the labelled corpora first
    python benchmarks/train_default_predictor.py   # -> predictors/onnx_net/pretrained/default.{json,safetensors}

    # a leave-one-out prior: the same training without one corpus (repeatable), for benchmarks that must not
    # let the predictor see their own space/dataset (see benchmarks/results/priors/README.md)
    python benchmarks/train_default_predictor.py --exclude einspace-digits \
        --out benchmarks/results/priors/without-einspace-digits

It learns from every corpus under benchmarks/results/predictor/ (the platform's labelled benchmarks of several
spaces plus NAS-Bench-Macro), one ranking group per space, with the default configuration. ``--exclude NAME``
(a corpus file stem, e.g. ``einspace-digits``; repeatable) leaves that corpus out; an unknown name is an error.
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
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME",
                        help="leave out the corpus benchmarks/results/predictor/NAME.jsonl.gz (repeatable)")
    args = parser.parse_args()
    paths = sorted(CORPORA.glob("*.jsonl.gz"))
    stems = [p.name[: -len(".jsonl.gz")] for p in paths]
    unknown = sorted(set(args.exclude) - set(stems))
    if unknown:
        parser.error(f"unknown corpus {unknown}; choose from {stems}")
    if set(stems) <= set(args.exclude):
        parser.error("--exclude leaves no corpus to learn from")
    corpora = [load_corpus(p) for p, stem in zip(paths, stems) if stem not in args.exclude]
    if args.exclude:
        print(f"excluded {sorted(args.exclude)}; learning from "
              f"{[(stem, len(c.rows)) for stem, c in zip([s for s in stems if s not in args.exclude], corpora)]}")
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
