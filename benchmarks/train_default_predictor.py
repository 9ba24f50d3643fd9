"""Train the pretrained predictor that ships inside the package (``OnnxNetPredictor.default()``).

    python benchmarks/predictor_corpus.py          # encode the labelled corpora first
    python benchmarks/train_default_predictor.py   # -> predictors/onnx_net/pretrained/default.{json,safetensors}

    # a leave-one-out prior: the same training without one corpus (repeatable) or without every corpus of a
    # space, for benchmarks that must not let the predictor see their own task (benchmarks/results/priors/README.md)
    python benchmarks/train_default_predictor.py --exclude einspace-digits \\
        --out benchmarks/results/priors/without-einspace-digits
    python benchmarks/train_default_predictor.py --exclude-space nats-sss --out benchmarks/results/priors/without-nats-sss

The recipe is ``PredictorConfig()`` with a lighter schedule (``--ensemble 3 --patience 20 --min-epochs 40``:
the 2-core machine trains the default in minutes instead of most of an hour). It learns from every corpus under benchmarks/results/predictor/ (the platform's labelled benchmarks of several
spaces, NAS-Bench-Macro and NATS-Bench SSS on three datasets), one ranking group per corpus
(space/dataset/protocol), with the default configuration; a corpus with more than ``--max-rows`` rows (default
500; ONNX-Net's "small amount of pretraining" is 1,000 per space, and NATS-SSS gives three corpora) contributes
a seeded uniform sample (the same architectures for the three NATS-SSS datasets).
``--exclude NAME`` (a corpus file stem, e.g. ``einspace-digits``; repeatable) leaves that corpus out,
``--exclude-space SPACE`` every corpus of that space; an unknown name is an error. The predictor's JSON records
each corpus it learned from (group, rows used, file, sha256): ``nas predictor info PATH`` prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np

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
    parser.add_argument("--max-rows", type=int, default=500, help="rows per corpus at most (seeded sample)")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME",
                        help="leave out the corpus benchmarks/results/predictor/NAME.jsonl.gz (repeatable)")
    parser.add_argument("--exclude-space", action="append", default=[], metavar="SPACE",
                        help="leave out every corpus of this space (repeatable)")
    parser.add_argument("--ensemble", type=int, default=3, help="heads of the ensemble (PredictorConfig.ensemble)")
    parser.add_argument("--patience", type=int, default=20, help="epochs without a better validation tau")
    parser.add_argument("--min-epochs", type=int, default=40, help="epochs of the refit on all rows at least")
    parser.add_argument("--no-size-prior", action="store_true",
                        help="without the transductive size term and the width features (PredictorConfig.size_prior, "
                        "width_features: the recipe of format-2 files before them)")
    args = parser.parse_args()
    paths = sorted(CORPORA.glob("*.jsonl.gz"))
    stems = [p.name[: -len(".jsonl.gz")] for p in paths]
    unknown = sorted(set(args.exclude) - set(stems))
    if unknown:
        parser.error(f"unknown corpus {unknown}; choose from {stems}")
    everything = [(p, stem, load_corpus(p)) for p, stem in zip(paths, stems)]
    spaces = sorted({c.space for _, _, c in everything})
    if set(args.exclude_space) - set(spaces):
        parser.error(f"unknown space {sorted(set(args.exclude_space) - set(spaces))}; choose from {spaces}")
    loaded = [(p, stem, c) for p, stem, c in everything
              if stem not in args.exclude and c.space not in args.exclude_space]
    if not loaded:
        parser.error("the exclusions leave no corpus to learn from")
    graphs, acc, groups, sources = [], [], [], []
    for path, _stem, corpus in loaded:
        rows = corpus.rows
        if len(rows) > args.max_rows:
            pick = np.sort(np.random.default_rng(args.seed).permutation(len(rows))[:args.max_rows])
            rows = [rows[i] for i in pick]
        graphs += [r.graph for r in rows]
        acc += [r.acc for r in rows]
        groups += [corpus.group] * len(rows)
        sources.append({"group": corpus.group, "rows": len(rows), "of": len(corpus.rows),
                        "file": f"benchmarks/results/predictor/{path.name}",
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    print("learning from " + ", ".join(f"{s['group']} ({s['rows']} of {s['of']})" for s in sources), flush=True)
    t = time.perf_counter()
    predictor = OnnxNetPredictor(seed=args.seed, ensemble=args.ensemble, patience=args.patience,
                                 min_epochs=args.min_epochs, size_prior=not args.no_size_prior,
                                 width_features=not args.no_size_prior)
    predictor.provenance = {"command": "python benchmarks/train_default_predictor.py"
                            + "".join(f" --exclude {e}" for e in args.exclude)
                            + "".join(f" --exclude-space {e}" for e in args.exclude_space)
                            + (f" --max-rows {args.max_rows}" if args.max_rows != 500 else "")
                            + (f" --seed {args.seed}" if args.seed else "")
                            + (" --no-size-prior" if args.no_size_prior else ""),
                            "excluded": sorted(args.exclude) + [f"space:{s}" for s in sorted(args.exclude_space)],
                            "sources": sources}
    predictor.fit(graphs, acc, groups=groups, verbose=True)
    json_path, weights = predictor.save(args.out)
    print(f"trained on {len(acc)} architectures from {[s['group'] for s in sources]} in {time.perf_counter() - t:.0f} s")
    print(f"wrote {json_path} and {weights} ({weights.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
