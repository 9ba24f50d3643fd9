"""Derivations per second of ``space.sample(seed)`` for two revisions of the tree, side by side and interleaved.

    python benchmarks/sampling_compare.py --before 9f30c4a            # 3 alternating rounds per space
    python benchmarks/sampling_compare.py --before REV --after WORKTREE_OR_REV --rounds 5

The machine this runs on is shared and noisy, so absolute rates of two separate runs mean little: this script
extracts ``--before`` (a git revision, ``git archive``) into a temporary folder and times it against ``--after``
(default: this working tree) in alternating subprocesses (order flipped every round, each after 20 warm-up samples),
and reports the median rate of each and their ratio. Output: ``benchmarks/results/sampling_compare.{json,md}``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: (space, input shape, samples per timed run)
CASES = [("einspace", (3, 32, 32), 200), ("einspace", (1, 8, 8), 200), ("einspace-1d", (1, 40), 200),
         ("nb201", (3, 32, 32), 100), ("nb-macro", (3, 32, 32), 300), ("hnb201", (3, 32, 32), 40),
         ("hnb201-shared", (3, 32, 32), 30), ("hnb201-einspace", (3, 32, 32), 30), ("seq-templates", (1, 40), 300)]
TIMER = """
import json, sys, time
from search_spaces.spaces import get_space
name, shape, n = sys.argv[1], tuple(json.loads(sys.argv[2])), int(sys.argv[3])
space = get_space(name, shape)
for s in range(20):
    space.sample(10_000 + s)
started = time.perf_counter()
for s in range(n):
    space.sample(s)
print(json.dumps({"rate": n / (time.perf_counter() - started)}))
"""


def extract(rev: str, into: Path) -> Path:
    """The tree of git revision ``rev`` written under ``into``."""
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def rate(tree: Path, name: str, shape: tuple[int, ...], n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", TIMER, name, json.dumps(shape), str(n)], cwd=tree,
                         env={"PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision of the 'before' tree")
    parser.add_argument("--after", default=None, help="git revision of the 'after' tree (default: this tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "sampling_compare.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": extract(args.before, Path(tmp) / "before"),
                 "after": extract(args.after, Path(tmp) / "after") if args.after else REPO}
        rows = {}
        for name, shape, n in CASES:
            runs: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
            for r in range(args.rounds):
                for k in (list(trees) if r % 2 == 0 else list(reversed(trees))):
                    runs[k].append(rate(trees[k], name, shape, n))
            med = {k: statistics.median(x["rate"] for x in v) for k, v in runs.items()}
            key = f"{name} {'x'.join(map(str, shape))}"
            rows[key] = {"before": med["before"], "after": med["after"], "ratio": med["after"] / med["before"],
                         "samples": n, "runs": runs}
            print(f"{key:26s} before {med['before']:8.1f}/s  after {med['after']:8.1f}/s  "
                  f"ratio {med['after'] / med['before']:.3f}", flush=True)
    geo = math.exp(statistics.mean(math.log(r["ratio"]) for r in rows.values()))
    result = {"command": "python benchmarks/sampling_compare.py " + " ".join(sys.argv[1:]), "before": args.before,
              "after": args.after or "working tree", "rounds": args.rounds, "geometric_mean_ratio": geo, "cases": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Sampling speed, {args.before} vs {result['after']}", "", f"Command: `{result['command']}`; "
             f"median of {args.rounds} interleaved runs each (the machine is shared: compare the ratios).", "",
             "| space | input | samples | before deriv/s | after deriv/s | after/before |",
             "|---|---|---:|---:|---:|---:|"]
    for key, r in rows.items():
        space, shape = key.split(" ")
        lines.append(f"| {space} | {shape} | {r['samples']} | {r['before']:.1f} | {r['after']:.1f} | "
                     f"{r['ratio']:.2f} |")
    lines += ["", f"Geometric mean of the ratios: **{geo:.3f}**."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"geometric mean ratio {geo:.3f}; wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
