"""How busy the search keeps its workers: the legacy round loop against the asynchronous loop, side by side.

    python benchmarks/utilization.py                      # -> benchmarks/results/utilization.{md,json}
    python benchmarks/utilization.py --budget 12 --cluster-budget 8 --out /tmp/u   # a quick run

Runs, one after the other in this one invocation (each search is `nas search run` in a subprocess, so each gets a
fresh Ray connection):

1. the default search (README's main command: `SearchConfig()` defaults, local Ray on this machine's CPUs) with
   ``loop: rounds`` (one Tune run per round, a barrier between rounds) and with ``loop: async`` (the default);
2. the same search on a **2-node loopback Ray cluster**: two raylets with 1 CPU each, started here with
   ``ray start --head --block`` / ``ray start --address ... --block`` (free ports, a temp dir of its own per node;
   ``tests/_ray_cluster.py``, without the dashboard) and stopped through the PIDs this script started (never
   ``ray stop``), rounds and async;
3. the async search on **one node with one CPU** (the head alone), for the scaling ratio;
4. the machine's own ceiling for that ratio: a fixed single-threaded torch training loop (the size of one of the
   default search's trials) timed alone and as two copies at once; two cores that share more than their names
   (memory bandwidth, a hypervisor's hyperthreads) give two copies less than twice the throughput of one, and no
   search on this machine can scale past that.

Metrics per search, from the store (each trial records the Unix time its worker began it, ``started_at``, the time
the driver saw it end, ``ended_at``, and its Ray ``node_id``), counted from the first trial start:

- busy fraction = sum of trial seconds / (wall time x slots), slots = the cluster's CPUs (1 per trial);
- busy until the last start: the same, over [first start, last start] only (without the end of the search, where
  fewer trials remain than slots: the steady state);
- gaps: for each trial end on a node, the seconds until the next trial starts on that node (median, p90);
- trials per minute; the nodes trials ran on.

The machine is shared (other jobs run beside this one): its load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from tests._ray_cluster import loopback_cluster  # noqa: E402 - shared with benchmarks/scale.py and test_jobs


def run_search(name: str, db: str, config: dict[str, Any], work: Path, env: dict[str, str],
               address: str | None = None) -> dict[str, Any]:
    """``nas search run`` in a subprocess; the command's wall time and exit code."""
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "nas.cli.app", "search", "run", "--name", name, "--db", db, "--config", str(path)]
    if address:
        command += ["--address", address]
    t = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
    return {"command_seconds": seconds, "exit_code": out.returncode}


CEILING_LOOP = """
import sys, time, torch
torch.set_num_threads(1)
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, padding=1),
                          torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 64, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
start = time.perf_counter()
for _ in range(int(sys.argv[1])):
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
print(time.perf_counter() - start)
"""


def machine_ceiling(steps: int = 1500) -> dict[str, float]:
    """Throughput of two concurrent copies of a fixed training loop over one copy alone (the best of 3 each)."""
    def timed(copies: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", CEILING_LOOP, str(steps)], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(copies)]
        return max(float(p.communicate()[0]) for p in procs)

    one = min(timed(1) for _ in range(3))
    two = min(timed(2) for _ in range(3))
    return {"one_copy_s": one, "two_copies_s": two, "ceiling_2_over_1": 2 * one / two}


def metrics(db: str, name: str, slots: int) -> dict[str, Any]:
    """Busy fraction, gaps, trials per minute and nodes of a finished search (see the module docstring)."""
    from nas.store import Store

    with Store(db) as store:
        trials = [t for t in store.trials_of(name) if t.resources.get("started_at") and t.resources.get("ended_at")]
        statuses = [str(t.status) for t in store.trials_of(name)]
        best = store.best(name, 1)
    spans = sorted((float(t.resources["started_at"]), float(t.resources["ended_at"]), str(t.node)) for t in trials)
    first, last = spans[0][0], max(end for _, end, _ in spans)
    wall = last - first
    busy = sum(end - start for start, end, _ in spans) / (wall * slots)
    gaps = []
    for node in {n for _, _, n in spans}:
        starts = sorted(start for start, _, n in spans if n == node)
        ends = sorted(end for _, end, n in spans if n == node)
        taken: set[int] = set()
        for end in ends:  # the next start on this node after the slot freed (each start answers one end)
            nxt = next((i for i, s in enumerate(starts) if s >= end - 0.05 and i not in taken), None)
            if nxt is not None:
                taken.add(nxt)
                gaps.append(max(0.0, starts[nxt] - end))
    gaps.sort()
    last_start = max(start for start, _, _ in spans)
    steady = sum(max(0.0, min(end, last_start) - start) for start, end, _ in spans)
    return {"busy_until_last_start": steady / ((last_start - first) * slots) if last_start > first else None,
            "trials": len(spans), "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
            "slots": slots, "wall_s": wall, "trial_seconds": sum(e - s for s, e, _ in spans), "busy_fraction": busy,
            "median_gap_s": statistics.median(gaps) if gaps else None,
            "p90_gap_s": gaps[int(0.9 * (len(gaps) - 1))] if gaps else None, "gaps": len(gaps),
            "trials_per_min": len(spans) / (wall / 60), "nodes": len({n for _, _, n in spans}),
            "best_val_acc": best[0].val_acc if best else None, "best_test_acc": best[0].test_acc if best else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=24, help="trials of the local default search (24)")
    parser.add_argument("--cluster-budget", type=int, default=24, help="trials of the cluster searches (24)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["local", "cluster", "one-node", "ceiling"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, default=None, help="keep the searches' store in this folder")
    args = parser.parse_args()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT) + os.pathsep +
           os.environ.get("PYTHONPATH", "")}
    cpus = os.cpu_count() or 1
    report: dict[str, Any] = {"command": "python benchmarks/utilization.py " + " ".join(sys.argv[1:]),
                              "cpus": cpus, "load_before": os.getloadavg(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="nas-util-") as tmp:
        work = Path(tmp)
        if args.keep is not None:
            work = args.keep.resolve()
            work.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{work / 'util.db'}"

        def one(label: str, loop: str, budget: int, slots: int, address: str | None = None) -> None:
            name = f"{label}-{loop}"
            config = {"loop": loop, "budget": budget}
            print(f"{name}: running ...", flush=True)
            run = run_search(name, db, config, work, env, address)
            row = {"setting": label, "loop": loop, "budget": budget, **run}
            if run["exit_code"] == 0:
                row.update(metrics(db, name, slots))
            report["runs"].append(row)
            print(json.dumps(row), flush=True)

        if "local" not in args.skip:
            for loop in ("rounds", "async"):
                one("local", loop, args.budget, cpus)
        if "cluster" not in args.skip:
            with loopback_cluster(2, work, env, dashboard=False) as cluster:
                for loop in ("rounds", "async"):
                    one("2-node", loop, args.cluster_budget, 2, cluster.address)
        if "one-node" not in args.skip:
            with loopback_cluster(1, work, env, dashboard=False) as cluster:
                one("1-node", "async", args.cluster_budget, 1, cluster.address)
    if "ceiling" not in args.skip:
        report["machine_ceiling"] = machine_ceiling()
        print(json.dumps(report["machine_ceiling"]), flush=True)
    report["load_after"] = os.getloadavg()
    by = {(r["setting"], r["loop"]): r for r in report["runs"] if "trials_per_min" in r}
    if ("2-node", "async") in by and ("1-node", "async") in by:
        report["scaling_2_over_1"] = by[("2-node", "async")]["trials_per_min"] / by[("1-node", "async")][
            "trials_per_min"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "utilization.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "utilization.md").write_text(_markdown(report))
    print(_markdown(report))


def _markdown(report: dict[str, Any]) -> str:
    def f(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["# Worker utilisation: round loop vs asynchronous loop", "",
             f"Command: `{report['command']}` ({report['cpus']} CPUs; load average before "
             f"{', '.join(f'{x:.1f}' for x in report['load_before'])}, after "
             f"{', '.join(f'{x:.1f}' for x in report.get('load_after', ()))}: the machine is shared).", "",
             "Counted from the first trial start; busy = sum of trial seconds / (wall x slots); gap = a slot freeing "
             "(the driver saw the trial end) to the next trial starting on that node (its worker began it).", "",
             "| setting | loop | trials | slots | wall s | busy fraction | busy until last start | median gap s | "
             "p90 gap s | trials/min | nodes | best val | best test | command s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        lines.append(f"| {r['setting']} | {r['loop']} | {f(r.get('trials'))} | {f(r.get('slots'))} | "
                     f"{f(r.get('wall_s'), 0)} | {f(r.get('busy_fraction'))} | {f(r.get('busy_until_last_start'))} | "
                     f"{f(r.get('median_gap_s'))} | "
                     f"{f(r.get('p90_gap_s'))} | {f(r.get('trials_per_min'))} | {f(r.get('nodes'))} | "
                     f"{f(r.get('best_val_acc'), 4)} | {f(r.get('best_test_acc'), 4)} | "
                     f"{f(r.get('command_seconds'), 0)} |")
    if "scaling_2_over_1" in report:
        lines += ["", f"Trials per minute, 2 nodes x 1 CPU over 1 node x 1 CPU (async): "
                      f"**{report['scaling_2_over_1']:.2f}x**."]
    if "machine_ceiling" in report:
        c = report["machine_ceiling"]
        lines += ["", f"The machine's own ceiling: two copies of a fixed single-threaded training loop at once have "
                      f"**{c['ceiling_2_over_1']:.2f}x** the throughput of one alone ({c['one_copy_s']:.1f} s alone, "
                      f"{c['two_copies_s']:.1f} s for both; best of 3)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
