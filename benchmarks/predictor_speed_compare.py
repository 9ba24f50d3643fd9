"""Inference rate and cold load of ``OnnxNetPredictor.default()`` for two revisions of the tree, side by side.

    python benchmarks/predictor_speed_compare.py --before 5ed0cc7             # 3 alternating rounds
    python benchmarks/predictor_speed_compare.py --before REV --after REV --rounds 5 --models 64

The machine is shared and noisy, so (as ``benchmarks/sampling_compare.py``) ``--before`` is extracted with ``git
archive`` into a temporary folder and timed against ``--after`` (default: this working tree) in alternating
subprocesses, the order flipped every round; the report gives the median of each and their ratio. Both trees read
the *same* ONNX files (with weights), built once here: ``--models`` per built-in space (seeds 0..), plus ``--warm``
others (seeds 1000..) for the warm-up. Each timed process, per space: a fresh ``OnnxNetPredictor.default()`` with
``encode_workers=1`` (one process), ``predict`` on the warm-up files, then the timed ``predict`` on the files.
Cold load, in fresh processes: ``import predictors``, ``OnnxNetPredictor.default()``, then its first ``predict`` of
one einspace file, and whether torch got imported on the way.
Output: ``benchmarks/results/predictor_speed_compare.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling_compare import extract  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SPACES = {"einspace": (3, 32, 32), "einspace-1d": (1, 40), "nb201": (3, 32, 32), "nb-macro": (3, 32, 32),
          "nats-sss": (3, 32, 32), "hnb201": (3, 32, 32), "hnb201-shared": (3, 32, 32),
          "hnb201-einspace": (3, 32, 32), "seq-templates": (1, 40)}
TIMER = """
import json, pickle, sys, time
from predictors import OnnxNetPredictor
files = pickle.load(open(sys.argv[1], "rb"))
out = {}
for space, (models, warm) in files.items():
    predictor = OnnxNetPredictor.default()
    predictor.config.encode_workers = 1
    predictor.predict(warm)
    started = time.perf_counter()
    predictor.predict(models)
    out[space] = len(models) / (time.perf_counter() - started)
print(json.dumps(out))
"""
COLD = """
import json, sys, time
t0 = time.perf_counter()
from predictors import OnnxNetPredictor
t1 = time.perf_counter()
predictor = OnnxNetPredictor.default()
t2 = time.perf_counter()
predictor.predict([sys.argv[1]])
t3 = time.perf_counter()
print(json.dumps({"import predictors": t1 - t0, "OnnxNetPredictor.default()": t2 - t1,
                  "first predict (1 file)": t3 - t2, "total": t3 - t0,
                  "torch imported (1 = yes)": float("torch" in sys.modules)}))
"""


def build_files(n: int, warm: int) -> dict[str, tuple[list[bytes], list[bytes]]]:
    """``{space: (timed files, warm-up files)}``, serialized ONNX with weights (torch seeded per file)."""
    import torch

    from nas.candidate import build_candidate
    from search_spaces import get_space

    torch.set_num_threads(1)
    out = {}
    def one(space: Any, seed: int) -> bytes:
        torch.manual_seed(seed)
        with torch.no_grad():
            return build_candidate(space, space.sample(seed=seed), 10, check=False).onnx_model.SerializeToString()

    for name, shape in SPACES.items():
        space = get_space(name, shape)
        out[name] = ([one(space, s) for s in range(n)], [one(space, 1000 + s) for s in range(warm)])
    return out


def run(tree: Path, code: str, *args: str) -> dict[str, float]:
    env = {"PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, env=env, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision of the 'before' tree")
    parser.add_argument("--after", default=None, help="git revision of the 'after' tree (default: this tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", type=int, default=64, help="timed ONNX files per space")
    parser.add_argument("--warm", type=int, default=32, help="warm-up ONNX files per space")
    parser.add_argument("--out", type=Path, default=RESULTS / "predictor_speed_compare.json")
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": extract(args.before, Path(tmp) / "before"),
                 "after": extract(args.after, Path(tmp) / "after") if args.after else REPO}
        files = Path(tmp) / "files.pkl"
        built = build_files(args.models, args.warm)
        files.write_bytes(pickle.dumps(built))
        first = Path(tmp) / "first.onnx"
        first.write_bytes(built["einspace"][0][0])
        rates: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
        cold: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
        for r in range(args.rounds):
            for k in (list(trees) if r % 2 == 0 else list(reversed(trees))):
                cold[k].append(run(trees[k], COLD, str(first)))
                rates[k].append(run(trees[k], TIMER, str(files)))
                load.append(os.getloadavg()[0])
                print(f"round {r} {k}: {rates[k][-1]} cold {cold[k][-1]}", flush=True)
    rows = {}
    for space in SPACES:
        med = {k: statistics.median(run_[space] for run_ in v) for k, v in rates.items()}
        rows[space] = {"before": med["before"], "after": med["after"], "ratio": med["after"] / med["before"]}
    cold_parts = {k: {part: statistics.median(c[part] for c in v) for part in v[0]} for k, v in cold.items()}
    result = {"command": "python benchmarks/predictor_speed_compare.py " + " ".join(sys.argv[1:]),
              "before": args.before, "after": args.after or "working tree", "rounds": args.rounds,
              "models_per_space": args.models, "load_average_1min": load, "architectures_per_second": rows,
              "cold_load_seconds": cold_parts, "runs": {"rates": rates, "cold": cold}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Predictor inference speed, {args.before} vs {result['after']}", "",
             f"Command: `{result['command']}`; median of {args.rounds} interleaved runs each; "
             f"`OnnxNetPredictor.default().predict` on {args.models} ONNX files with weights per space after a "
             f"{args.warm}-file warm-up, one process (`encode_workers=1`). The machine (2 cores) is shared: load "
             f"average {min(load):.1f}-{max(load):.1f} during the run, so compare the ratios.", "",
             "| space | before arch/s | after arch/s | after/before |", "|---|---:|---:|---:|"]
    lines += [f"| {s} | {r['before']:.1f} | {r['after']:.1f} | {r['ratio']:.2f} |" for s, r in rows.items()]
    lines += ["", "Cold load (fresh process, seconds, median):", "", "| part | before | after |", "|---|---:|---:|"]
    lines += [f"| {part} | {cold_parts['before'][part]:.2f} | {cold_parts['after'][part]:.2f} |"
              for part in cold_parts["before"]]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
