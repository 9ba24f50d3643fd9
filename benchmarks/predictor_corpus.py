"""Encode the labelled architectures the predictor learns from into corpus files (benchmarks/results/predictor/).

    python benchmarks/predictor_corpus.py            # every source below that exists
    python benchmarks/predictor_corpus.py --only nb-macro

Sources: the platform's labelled benchmarks (``nas bench build`` files under benchmarks/results/) and the
NAS-Bench-Macro table (../shared/data/nas-bench-macro/, networks rebuilt from the nb-macro template).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
OUT = RESULTS / "predictor"
BENCHMARKS = {
    "einspace-digits": RESULTS / "bench_einspace_digits.jsonl.gz",
    "nb201-digits": RESULTS / "bench_nb201_digits.jsonl.gz",
    "einspace1d-mnist1d": RESULTS / "bench_einspace1d_mnist1d.jsonl.gz",
}
NB_MACRO = Path(os.environ.get("NAS_BENCH_MACRO", ROOT.parent.parent / "shared" / "data" / "nas-bench-macro"
                               / "nas-bench-macro_cifar10.json"))


def main() -> None:
    import torch

    from nas.bench.predictor_corpus import corpus_from_benchmark, corpus_from_nas_bench_macro

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="corpus names to (re)build")
    parser.add_argument("--variant", default="chain")
    args = parser.parse_args()
    wanted = set(args.only) if args.only else None
    for name, path in BENCHMARKS.items():
        if (wanted is None or name in wanted) and path.exists():
            t = time.perf_counter()
            out = corpus_from_benchmark(path, OUT / f"{name}.jsonl.gz", variant=args.variant)
            print(f"{name}: {out} ({time.perf_counter() - t:.1f} s)")
    if (wanted is None or "nb-macro" in wanted) and NB_MACRO.exists():
        t = time.perf_counter()

        def progress(i: int) -> None:
            if i % 500 == 0:
                print(f"  nb-macro {i}/6561 ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)

        out = corpus_from_nas_bench_macro(NB_MACRO, OUT / "nb-macro-cifar10.jsonl.gz", variant=args.variant,
                                          progress=progress)
        print(f"nb-macro: {out} ({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
