"""Encode the architectures the predictor learns from into corpus files (benchmarks/results/predictor/).

    python benchmarks/predictor_corpus.py                        # every source below that exists
    python benchmarks/predictor_corpus.py --only nb-macro nats-sss
    python benchmarks/predictor_corpus.py --only nats-sss --nats-sss-sample 3000
    python benchmarks/predictor_corpus.py --only nb201-all --nb201-sample 2000

Sources: the platform's labelled benchmarks (``nas bench build`` files under benchmarks/results/), the
NAS-Bench-Macro table (../shared/data/nas-bench-macro/: 6,561 networks rebuilt from the nb-macro template), the
NATS-Bench SSS table (../shared/data/nats-sss/: networks rebuilt from the nats-sss template, one corpus per
dataset; ``--nats-sss-sample N`` takes a seeded uniform sample of the 32,768) and ``nb201-all``, the unlabelled
NAS-Bench-201 cells (``--nb201-sample N`` likewise) that the structure test of the predictor input reads
(``tests/predictors/test_predictor_input.py``). Networks are built without weights. Each source prints its time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
OUT = RESULTS / "predictor"
STRUCTURE = OUT / "structure"
BENCHMARKS = {
    "einspace-digits": RESULTS / "bench_einspace_digits.jsonl.gz",
    "nb201-digits": RESULTS / "bench_nb201_digits.jsonl.gz",
    "einspace1d-mnist1d": RESULTS / "bench_einspace1d_mnist1d.jsonl.gz",
}
SHARED = ROOT.parent.parent / "shared" / "data"
NB_MACRO = Path(os.environ.get("NAS_BENCH_MACRO", SHARED / "nas-bench-macro" / "nas-bench-macro_cifar10.json"))
NATS_SSS = Path(os.environ.get("NATS_SSS", SHARED / "nats-sss" / "nats-sss.json"))


def _progress(name: str, total: int, start: float):  # noqa: ANN202
    def report(i: int) -> None:
        if i % 500 == 0:
            print(f"  {name} {i}/{total} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return report


def main() -> None:
    import torch

    from nas.bench import predictor_corpus as pc

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="sources to (re)build: einspace-digits nb201-digits "
                        "einspace1d-mnist1d nb-macro nats-sss nb201-all")
    parser.add_argument("--variant", default="relative")
    parser.add_argument("--nats-sss-sample", type=int, default=None, metavar="N")
    parser.add_argument("--nb201-sample", type=int, default=None, metavar="N")
    args = parser.parse_args()
    wanted = set(args.only) if args.only else None
    for name, path in BENCHMARKS.items():
        if (wanted is None or name in wanted) and path.exists():
            t = time.perf_counter()
            out = pc.corpus_from_benchmark(path, OUT / f"{name}.jsonl.gz", variant=args.variant)
            print(f"{name}: {out} ({time.perf_counter() - t:.1f} s)", flush=True)
    if (wanted is None or "nb-macro" in wanted) and NB_MACRO.exists():
        t = time.perf_counter()
        out = pc.corpus_from_nas_bench_macro(NB_MACRO, OUT / "nb-macro-cifar10.jsonl.gz", variant=args.variant,
                                             progress=_progress("nb-macro", 6561, t))
        print(f"nb-macro: {out} ({time.perf_counter() - t:.1f} s)", flush=True)
    if (wanted is None or "nats-sss" in wanted) and NATS_SSS.exists():
        t = time.perf_counter()
        outs = pc.corpora_from_nats_sss(NATS_SSS, OUT, variant=args.variant, sample=args.nats_sss_sample,
                                        progress=_progress("nats-sss", args.nats_sss_sample or 32768, t))
        print(f"nats-sss: {[str(o) for o in outs]} ({time.perf_counter() - t:.1f} s)", flush=True)
    if wanted is not None and "nb201-all" in wanted:
        t = time.perf_counter()
        from search_spaces import get_space

        archs = list(get_space("nb201", (3, 32, 32)).enumerate())
        if args.nb201_sample is not None and args.nb201_sample < len(archs):
            archs = sorted(random.Random(0).sample(archs, args.nb201_sample))
        rows = pc.encode_rows(pc._space_items("nb201", archs), args.variant, features=False,
                              progress=_progress("nb201", len(archs), t))
        out = pc.write_corpora({STRUCTURE / "nb201.jsonl.gz": ("nb201", "", "", None)}, rows, args.variant)[0]
        print(f"nb201-all: {out}, {len(archs)} cells ({time.perf_counter() - t:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
