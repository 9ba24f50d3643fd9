"""Scale: trials per minute on 1 vs 2 loopback Ray nodes, and store latency with 10,000 trials (SQLite, PostgreSQL).

    python benchmarks/scale.py                    # -> benchmarks/results/scale.{md,json}
    python benchmarks/scale.py --trials 2000 --budget 4 --out /tmp/s     # a quick run

1. **Trials per minute**: the same small search (einspace on digits, random, no scorers, 2 epochs of at most 10
   batches, FIFO) as ``nas search run --address`` on a loopback cluster of 1 node and of 2 nodes (1 CPU each,
   started and stopped by this script through the PIDs it started: ``tests/_ray_cluster.py``), counted from the first
   trial start to the last trial end (``utilization.metrics``).
2. **Store latency**: a store is filled with ``--trials`` finished trials (10,000), each an Optuna trial too,
   copied in bulk from one trial written by the store itself (rows of our ``nas_*`` tables and of Optuna's tables,
   with fresh ids, hashes and ``nas_trial_id`` attributes, so the tables hold what 10,000 real writes leave); then
   ``--writes`` real trial writes (``add_architecture`` + ``start_trial`` + ``finish_trial`` + ``mark_told``: what
   the driver does per finished trial) and reads (``trials_of``: what the driver's progress report does per epoch)
   are timed, and the same on an empty store, side by side, for SQLite and for a throwaway PostgreSQL server
   (``tests/_postgres.py``; skipped where none can start).

The machine is shared with other jobs: compare the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from benchmarks.utilization import metrics, run_search  # noqa: E402
from tests._ray_cluster import loopback_cluster  # noqa: E402 - per-node temp dirs, every port free

SEARCH = {"space": "einspace", "dataset": "digits", "strategy": "random", "seeds": [], "batch": 2, "scorers": [],
          "seed": 21, "train": {"epochs": 2, "max_batches_per_epoch": 10}, "tune": {"scheduler": "fifo"}}


# ------------------------------------------------------------------------------------------ trials per minute


def trials_per_minute(budget: int, work: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"}
    out: dict[str, Any] = {}
    for nodes in (1, 2):
        folder = Path(tempfile.mkdtemp(prefix="nasscale-", dir="/tmp"))  # short: Ray's socket paths
        db = f"sqlite:///{work / f'nodes{nodes}.db'}"
        try:
            with loopback_cluster(nodes, folder, env) as cluster:
                run = run_search(f"n{nodes}", db, {**SEARCH, "budget": budget}, work, env, address=cluster.address)
            out[f"{nodes}_node"] = {**run, **metrics(db, f"n{nodes}", nodes)}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    one, two = out["1_node"]["trials_per_min"], out["2_node"]["trials_per_min"]
    out["speedup"] = two / one if one else None
    return out


# ---------------------------------------------------------------------------------------------- store latency


def _write_one(store: Any, name: str, index: int) -> float:
    epochs = [{"epoch": e, "train_loss": 1.0 / e, "val_acc": 0.5 + 0.01 * e, "test_acc": 0.5, "seconds": 0.1}
              for e in range(1, 6)]
    start = time.perf_counter()
    store.add_architecture(f"w{index:08d}", space="einspace", derivation=f"(d {index})", arch=None,
                           onnx=b"\x08\x07" + bytes(200), params=1000 + index, flops=20_000)
    trial = store.start_trial(name, f"w{index:08d}", generation=index, resources={"cpu": 1, "gpu": 0})
    store.finish_trial(trial, status="ok", epochs=epochs, final=epochs[-1], objective_values=[0.55, 1000 + index],
                       resources={"node_id": "n", "device": "cpu"})
    store.mark_told([trial])
    return time.perf_counter() - start


def _fill(store: Any, name: str, n: int) -> float:
    """Copy one real trial's rows ``n - 1`` times (fresh ids) into our tables and Optuna's; returns seconds."""
    import sqlalchemy as sa

    start = time.perf_counter()
    _write_one(store, name, 0)
    engine = store._engine
    meta = sa.MetaData()
    meta.reflect(engine)
    optuna_children = [t for t in ("trial_values", "trial_user_attributes", "trial_system_attributes",
                                   "trial_intermediate_values", "trial_params", "trial_heartbeats")
                       if t in meta.tables]
    with engine.begin() as connection:
        def rows(table: str, where: Any) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in connection.execute(sa.select(meta.tables[table]).where(where))]

        trials = meta.tables["trials"]
        base_trial = rows("trials", sa.true())[0]
        tid, number = base_trial["trial_id"], base_trial["number"]
        children = {t: rows(t, meta.tables[t].c.trial_id == tid) for t in optuna_children}
        ours = rows("nas_trials", sa.true())[0]
        arch = rows("nas_architectures", sa.true())[0]
        pk = {t: [c.name for c in meta.tables[t].primary_key][0] for t in optuna_children}
        next_pk = {t: (connection.execute(sa.select(sa.func.max(meta.tables[t].c[pk[t]]))).scalar() or 0) + 1
                   for t in optuna_children}
        batch = 1000
        for lo in range(1, n, batch):
            hi = min(n, lo + batch)
            new_trials, new_children, new_ours, new_archs = [], {t: [] for t in optuna_children}, [], []
            for i in range(lo, hi):
                new_tid, our_id, h = tid + i, ours["id"] + i, f"f{i:08d}"
                new_trials.append({**base_trial, "trial_id": new_tid, "number": number + i})
                for table, templates in children.items():
                    for row in templates:
                        row = {**row, pk[table]: next_pk[table], "trial_id": new_tid}
                        next_pk[table] += 1
                        if table == "trial_user_attributes" and row["key"] == "nas_trial_id":
                            row["value_json"] = json.dumps(our_id)
                        elif table == "trial_user_attributes" and row["key"] == "hash":
                            row["value_json"] = json.dumps(h)
                        new_children[table].append(row)
                new_archs.append({**arch, "hash": h})
                new_ours.append({**ours, "id": our_id, "arch_hash": h, "optuna_trial_number": number + i,
                                 "tell_seq": (ours["tell_seq"] or 0) + i})
            connection.execute(trials.insert(), new_trials)
            for table, values in new_children.items():
                if values:
                    connection.execute(meta.tables[table].insert(), values)
            connection.execute(meta.tables["nas_architectures"].insert(), new_archs)
            connection.execute(meta.tables["nas_trials"].insert(), new_ours)
    if engine.dialect.name == "postgresql":  # the copied ids ran ahead of the sequences
        with engine.begin() as connection:
            for table, column in [("trials", "trial_id"), ("nas_trials", "id"), *[(t, pk[t]) for t in optuna_children]]:
                connection.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                                           f"(SELECT MAX({column}) FROM {table}))"))
    return time.perf_counter() - start


def _time_store(url: str, artifacts: Path, fill: int, writes: int) -> dict[str, Any]:
    from nas.store import Store

    with Store(url, artifact_dir=artifacts) as store:
        store.create_search("scale", space="einspace", dataset="digits", config={}, seed=0,
                            objectives=["val_acc", "params"], directions=["maximize", "minimize"])
        fill_s = _fill(store, "scale", fill) if fill > 1 else 0.0
        held = len(store.trials_of("scale"))
        write_s = [_write_one(store, "scale", 10_000_000 + i) for i in range(writes)]
        read_s = []
        for _ in range(max(3, writes // 4)):
            start = time.perf_counter()
            store.trials_of("scale")
            read_s.append(time.perf_counter() - start)
    return {"trials_held": held, "fill_s": fill_s, "writes": writes,
            "write_ms_median": 1000 * statistics.median(write_s),
            "write_ms_p90": 1000 * sorted(write_s)[int(0.9 * (len(write_s) - 1))],
            "read_all_ms_median": 1000 * statistics.median(read_s)}


def store_latency(trials: int, writes: int, work: Path) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import logging

    logging.getLogger("nas.viz.dashboard").setLevel(logging.ERROR)
    out: dict[str, Any] = {}
    from tests._postgres import start_postgres

    server = start_postgres()
    try:
        backends = {"sqlite": lambda tag: f"sqlite:///{work / f'{tag}.db'}"}
        if server is not None:
            backends["postgresql"] = lambda tag: server.new_database()
        else:
            out["postgresql"] = "skipped: no PostgreSQL server can be started here"
        for backend, url_of in backends.items():
            empty = _time_store(url_of(f"{backend}_empty"), work / f"{backend}_empty_art", 0, writes)
            full = _time_store(url_of(f"{backend}_full"), work / f"{backend}_full_art", trials, writes)
            out[backend] = {"empty": empty, "full": full,
                            "write_ratio_full_vs_empty": full["write_ms_median"] / empty["write_ms_median"]}
    finally:
        if server is not None:
            server.remove()
    return out


# -------------------------------------------------------------------------------------------------- report


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# Scale (issue 14)", "", f"Command: `{report['command']}`; load average before/after: "
             f"{report['load_before']} / {report['load_after']} (shared machine).", "",
             "## Trials per minute, loopback Ray cluster (1 CPU per node)", "",
             "| nodes | trials | wall s | trials/min | nodes used | busy fraction |", "|---|---|---|---|---|---|"]
    tpm = report["trials_per_minute"]
    for key in ("1_node", "2_node"):
        r = tpm[key]
        lines.append(f"| {key[0]} | {r['trials']} | {r['wall_s']:.1f} | {r['trials_per_min']:.2f} | {r['nodes']} | "
                     f"{r['busy_fraction']:.2f} |")
    lines += ["", f"2 nodes / 1 node: **{tpm['speedup']:.2f}x** trials per minute.", "",
              f"## Store latency with {report['args']['trials']:,} trials", "",
              "| database | trials held | write ms (median) | write ms (p90) | read all ms (median) | fill s |",
              "|---|---|---|---|---|---|"]
    for backend in ("sqlite", "postgresql"):
        entry = report["store"].get(backend)
        if not isinstance(entry, dict):
            lines.append(f"| {backend} | {entry} | | | | |")
            continue
        for label in ("empty", "full"):
            r = entry[label]
            lines.append(f"| {backend} ({label}) | {r['trials_held']:,} | {r['write_ms_median']:.1f} | "
                         f"{r['write_ms_p90']:.1f} | {r['read_all_ms_median']:.1f} | {r['fill_s']:.1f} |")
        lines.append(f"| {backend}: full / empty write | | **{entry['write_ratio_full_vs_empty']:.2f}x** | | | |")
    lines += ["", "A write is one finished trial as the driver records it (architecture, trial row, Optuna trial with "
              "its artifact, tell order); a read is `trials_of` (every trial of the search), which the progress "
              "report does per epoch."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=8, help="trials of each trials-per-minute search")
    parser.add_argument("--trials", type=int, default=10_000, help="trials the full store holds")
    parser.add_argument("--writes", type=int, default=40, help="timed writes per store")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="nas-scale-"))
    report: dict[str, Any] = {"command": " ".join(["python", "benchmarks/scale.py", *sys.argv[1:]]),
                              "args": {"budget": args.budget, "trials": args.trials, "writes": args.writes},
                              "load_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        report["store"] = store_latency(args.trials, args.writes, work)
        print(json.dumps(report["store"], indent=2))
        report["trials_per_minute"] = trials_per_minute(args.budget, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    (args.out / "scale.json").write_text(json.dumps(report, indent=2))
    (args.out / "scale.md").write_text(_markdown(report))
    print(_markdown(report))


if __name__ == "__main__":
    main()
