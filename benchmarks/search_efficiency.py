"""Search efficiency: random search vs regularised evolution vs predictor/proxy-ranked evolution, equal budgets.

Every search is a real one (:func:`nas.search.run_search`: Ray Tune trials with ASHA, one SQLite store per
search) with the platform's default :class:`~nas.search.SearchConfig` except for what is compared, on two tasks
(``--tasks``, both by default):

* ``digits``: space ``einspace`` on scikit-learn's 8x8 digits;
* ``mnist1d``: space ``einspace-1d`` on MNIST-1D (sequences 1x40), where a plain MLP stays far below a
  convolution-like network, so the search has something to find.

**No seed networks** (``seeds: []``) in any search, so that the comparison is about the search, not about known
good networks trained first. The arms (``--strategies``):

* ``random``: random search, ``scorers: []`` (no pre-training selection);
* ``evolution``: regularised evolution, ``scorers: []``;
* ``ranked``: regularised evolution whose proposals are ranked before training by the README default scorers
  ``[predictor, zen]`` (the driver proposes ``oversample`` = 4 candidates per trained one and trains the best
  quarter): the default search without seeds;
* ``guided``, ``random-ranked`` (optional): the ``guided`` strategy; random samples ranked by the scorers.

**No leak.** The predictor of every arm is a *leave-one-out prior* (``predictor_path``, see
benchmarks/results/priors/README.md) that never saw the benchmarked space/dataset: ``without-einspace-digits``
on digits, ``without-einspace1d-mnist1d`` on mnist1d. (The package's default predictor,
``OnnxNetPredictor.default()``, learned from 300 trainings of einspace on digits and 300 of einspace-1d on
mnist1d, so it must not be used here.) The report states which prior was used and what it learned from.

Each search trains exactly ``--budget`` candidates (default 30) in rounds of ``--batch`` (default 10) for each
seed of ``--seeds`` (default 0..4; the search's seed also fixes the data split and training), with each task's
epoch count (``--epochs`` overrides both). From each store: the best-so-far validation accuracy after each
trained candidate (trials in id order; ``ok``, ``stopped`` and ``failed`` all count as trainings), the test
accuracy of the best trial by validation accuracy, the wall time. Reported per task and arm: the mean best-so-far
curve with a 95% bootstrap interval over seeds, the final best's test accuracy, the trainings needed to reach
random search's final best, and a paired comparison over seeds against random (Wilcoxon signed-rank test and a
paired bootstrap interval on the area under the best-so-far curve, on the final best val and on its test
accuracy).

Run from the repository root::

    python benchmarks/search_efficiency.py [--tasks digits mnist1d] [--strategies random evolution ranked] \
        [--seeds 0 1 2 3 4] [--budget 30] [--batch 10] [--epochs N] [--workdir DIR] [--fresh] \
        [--out benchmarks/results/search_efficiency.json] [--no-plot]

Resumable: each search lives in ``--workdir`` (default ``$TMPDIR/nas_search_efficiency``) as
``<task>-<strategy>-s<seed>.db`` with a ``.json`` note (its config and wall time). A finished search is read back,
not rerun; an unfinished one is resumed with :func:`nas.search.resume_search`. ``--fresh`` deletes the requested
searches first. Results go to ``--out`` (JSON), the same path with ``.md``, and ``.png`` unless ``--no-plot``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from nas.search import SearchConfig, resume_search, run_search  # noqa: E402
from nas.store import Store  # noqa: E402

SCORERS = ["predictor", "zen"]  # the README default
PRIORS = ROOT / "benchmarks" / "results" / "priors"

#: The benchmarked tasks: space, dataset, the leave-one-out prior that never saw them, the epochs per trial.
TASKS: dict[str, dict[str, Any]] = {
    "digits": {"space": "einspace", "dataset": "digits", "prior": "without-einspace-digits",
               "excluded_corpus": "einspace-digits", "budget": 30, "batch": 10, "epochs": 20},
    "mnist1d": {"space": "einspace-1d", "dataset": "mnist1d", "prior": "without-einspace1d-mnist1d",
                "excluded_corpus": "einspace1d-mnist1d", "budget": 20, "batch": 10,
                "epochs": 10},
}

#: What each compared search changes in the default SearchConfig (besides seeds, budget, batch, epochs, seed).
STRATEGIES: dict[str, dict[str, Any]] = {
    "random": {"strategy": "random", "scorers": []},
    "evolution": {"strategy": "evolution", "scorers": []},
    "ranked": {"strategy": "evolution", "scorers": SCORERS},
    "guided": {"strategy": "guided", "scorers": SCORERS, "oversample": 1,
               "strategy_options": {"candidates_per_slot": 4}},
    "random-ranked": {"strategy": "random", "scorers": SCORERS},
}
LABELS = {
    "random": "random search (no ranking)",
    "evolution": "regularised evolution (no ranking)",
    "ranked": "evolution + predictor/zen ranking (oversample 4)",
    "guided": "guided evolution (predictor/zen, 4 children per slot)",
    "random-ranked": "random + predictor/zen ranking (oversample 4)",
}
DEFAULT_STRATEGIES = ["random", "evolution", "ranked"]
DEFAULT_TASKS = ["digits", "mnist1d"]
BASELINE = "random"
FINISHED = ("ok", "stopped", "failed")
BOOTSTRAP = 10_000  # bootstrap resamples (seeded, so the report is reproducible from the stores)
ALPHA = 0.05


# ------------------------------------------------------------------------------------------------ running


def prior_path(task: str) -> str:
    return str((PRIORS / TASKS[task]["prior"]).relative_to(ROOT))


def prior_info(task: str) -> dict[str, Any]:
    """What the task's prior learned from (its own record) and what it never saw."""
    meta = json.loads((PRIORS / f"{TASKS[task]['prior']}.json").read_text())
    groups = meta["history"][0]["groups"] if meta.get("history") else {}
    return {"path": prior_path(task), "learned_from": groups, "examples": sum(groups.values()),
            "never_saw": f"{TASKS[task]['space']}/{TASKS[task]['dataset']} (corpus "
                         f"benchmarks/results/predictor/{TASKS[task]['excluded_corpus']}.jsonl.gz)"}


def search_config(task: str, strategy: str, seed: int, budget: int, batch: int, epochs: int | None) -> SearchConfig:
    t = TASKS[task]
    fields: dict[str, Any] = {**STRATEGIES[strategy], "space": t["space"], "dataset": t["dataset"], "seeds": [],
                              "budget": budget, "batch": batch, "seed": seed,
                              "train": {"epochs": t["epochs"] if epochs is None else epochs},
                              # every arm names the fair prior (only the ranked ones use a predictor at all)
                              "predictor_path": prior_path(task)}
    return SearchConfig.from_dict(fields)


def run_one(task: str, strategy: str, seed: int, config: SearchConfig, workdir: Path) -> dict[str, Any]:
    """Run (or resume, or read back) one search; return its note (config, wall seconds, status)."""
    name = f"{task}-{strategy}-s{seed}"
    db_path = workdir / f"{name}.db"
    note_path = workdir / f"{name}.json"
    db = f"sqlite:///{db_path}"
    note: dict[str, Any] = json.loads(note_path.read_text()) if note_path.exists() else {}
    if note and note.get("config") != config.to_dict():
        raise SystemExit(f"error: {db_path} holds a search with another config; use --fresh or another --workdir")
    if note.get("status") == "finished" and db_path.exists():
        print(f"[{name}] finished earlier ({note['seconds']:.0f} s): read back", flush=True)
        return note
    note = {"name": name, "task": task, "strategy": strategy, "seed": seed, "db": str(db_path),
            "config": config.to_dict(), "seconds": float(note.get("seconds", 0.0)), "runs": int(note.get("runs", 0)),
            "status": "running"}
    note_path.write_text(json.dumps(note, indent=2) + "\n")

    def progress(p: Any) -> None:
        if p.event == "trial" and p.trial is not None:
            t = p.trial
            acc = "-" if t.val_acc is None else f"{t.val_acc:.4f}"
            best = "-" if p.best_val_acc is None else f"{p.best_val_acc:.4f}"
            print(f"[{name}] {p.finished:3d}/{p.budget} trial {t.id} {t.status:7s} val {acc}  best {best}",
                  flush=True)
        elif p.event in ("round", "warning", "start"):
            print(f"[{name}] {p.message}", flush=True)

    started = time.perf_counter()
    exists = db_path.exists()
    if exists:
        with Store(db) as store:
            exists = name in {s.name for s in store.list_searches()}
    if exists:
        print(f"[{name}] resuming an unfinished search", flush=True)
        summary = resume_search(name, db=db, progress=progress)
    else:
        summary = run_search(config, name=name, db=db, progress=progress)
    note["seconds"] += time.perf_counter() - started
    note["runs"] += 1
    note["status"] = summary.status
    note["warnings"] = list(summary.warnings)
    note_path.write_text(json.dumps(note, indent=2) + "\n")
    print(f"[{name}] {summary.status}: {summary.finished} trials in {note['seconds']:.0f} s, best val "
          f"{summary.best.val_acc if summary.best else None}", flush=True)
    return note


# ------------------------------------------------------------------------------------------------ analysis


def read_search(note: dict[str, Any]) -> dict[str, Any]:
    """The per-search results from its store: best-so-far curve over all trainings, best by val, counts."""
    name = note["name"]
    with Store(f"sqlite:///{note['db']}") as store:
        trials = store.trials_of(name, status=FINISHED)
        best = store.best(name, 1)
        arch = store.get_architecture(best[0].arch_hash) if best else None
    curve: list[float | None] = []
    running: float | None = None
    for t in trials:
        if t.status in ("ok", "stopped") and t.val_acc is not None:
            running = t.val_acc if running is None else max(running, t.val_acc)
        curve.append(running)
    b = best[0] if best else None
    return {"name": name, "task": note["task"], "strategy": note["strategy"], "seed": note["seed"],
            "seconds": note["seconds"], "runs": note["runs"], "trials": len(trials),
            "ok": sum(t.status == "ok" for t in trials), "stopped": sum(t.status == "stopped" for t in trials),
            "failed": sum(t.status == "failed" for t in trials),
            "final_best_val": curve[-1] if curve else None,
            "best": None if b is None else {"trial_id": b.id, "position": [t.id for t in trials].index(b.id) + 1,
                                            "status": b.status, "val_acc": b.val_acc, "test_acc": b.test_acc,
                                            "epochs": len(b.epochs), "hash": b.arch_hash,
                                            "params": arch.params if arch else None,
                                            "derivation": arch.derivation if arch else None},
            "curve": curve, "val_accs": [t.val_acc for t in trials], "statuses": [t.status for t in trials],
            "warnings": note.get("warnings", [])}


def first_reach(curve: Sequence[float | None], target: float | None, eps: float = 1e-9) -> int | None:
    """1-based number of trainings after which ``curve`` is >= ``target`` (``None`` if never)."""
    if target is None:
        return None
    for i, v in enumerate(curve):
        if v is not None and v >= target - eps:
            return i + 1
    return None


def mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(vals) if vals else None


def stdev(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) > 1 else None


def mean_curve(curves: Sequence[Sequence[float | None]], budget: int) -> list[float | None]:
    return [mean([c[i] if i < len(c) else (c[-1] if c else None) for c in curves]) for i in range(budget)]


def round_up(k: int | None, batch: int, budget: int) -> int | None:
    """Trainings at the end of the round in which training ``k`` happened (a round's trials run as one Tune run)."""
    return None if k is None else min(math.ceil(k / batch) * batch, budget)


def bootstrap_ci(values: Sequence[float], stat: Any = None, n: int = BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of ``values`` (resampling seeds with replacement)."""
    import numpy as np

    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return None, None
    if len(vals) == 1:
        return float(vals[0]), float(vals[0])
    rng = np.random.default_rng(seed)
    means = vals[rng.integers(0, len(vals), size=(n, len(vals)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def auc(curve: Sequence[float | None], budget: int) -> float:
    """Area under the best-so-far curve, normalised to [0, 1]: the mean over N = 1..budget (no result yet = 0)."""
    vals = [(curve[i] if i < len(curve) else (curve[-1] if curve else None)) for i in range(budget)]
    return statistics.fmean([0.0 if v is None else v for v in vals])


def paired(arm: Sequence[float | None], base: Sequence[float | None]) -> dict[str, Any]:
    """Paired comparison over seeds of ``arm - base``: mean difference, bootstrap CI, Wilcoxon signed-rank."""
    from scipy.stats import wilcoxon

    d = [a - b for a, b in zip(arm, base) if a is not None and b is not None]
    out: dict[str, Any] = {"n": len(d), "differences": d, "mean_diff": mean(d),
                           "wins": sum(x > 1e-12 for x in d), "losses": sum(x < -1e-12 for x in d),
                           "ties": sum(abs(x) <= 1e-12 for x in d)}
    out["ci_low"], out["ci_high"] = bootstrap_ci(d)
    nonzero = [x for x in d if abs(x) > 1e-12]
    if len(nonzero) == 0:
        out["wilcoxon_p"] = 1.0
    else:
        try:
            out["wilcoxon_p"] = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
        except ValueError:
            out["wilcoxon_p"] = None
    n = len(nonzero)
    out["wilcoxon_min_p"] = min(1.0, 2 / 2 ** n) if n else 1.0  # the smallest p the exact test can give
    out["significant"] = out["wilcoxon_p"] is not None and out["wilcoxon_p"] < ALPHA
    out["ci_excludes_zero"] = out["ci_low"] is not None and (out["ci_low"] > 0 or out["ci_high"] < 0)
    return out


def analyse(results: list[dict[str, Any]], strategies: list[str], seeds: list[int], budget: int,
            batch: int) -> dict[str, Any]:
    """The analysis of one task's searches."""
    by = {(r["strategy"], r["seed"]): r for r in results}
    per_strategy: dict[str, Any] = {}
    for s in strategies:
        rows = [by[(s, seed)] for seed in seeds if (s, seed) in by]
        curves = [r["curve"] for r in rows]
        finals = [r["final_best_val"] for r in rows]
        tests = [r["best"]["test_acc"] if r["best"] else None for r in rows]
        aucs = [auc(c, budget) for c in curves]
        band = [bootstrap_ci([(c[i] if i < len(c) else c[-1]) for c in curves if c and
                              (c[i] if i < len(c) else c[-1]) is not None]) for i in range(budget)]
        per_strategy[s] = {
            "label": LABELS[s], "seeds": [r["seed"] for r in rows],
            "final_best_val_mean": mean(finals), "final_best_val_std": stdev(finals),
            "final_best_val_ci": bootstrap_ci(finals),
            "test_of_best_mean": mean(tests), "test_of_best_std": stdev(tests), "test_of_best_ci": bootstrap_ci(tests),
            "auc_mean": mean(aucs), "auc_ci": bootstrap_ci(aucs), "aucs": aucs,
            "seconds_mean": mean([r["seconds"] for r in rows]),
            "failed_total": sum(r["failed"] for r in rows), "stopped_total": sum(r["stopped"] for r in rows),
            "mean_curve": mean_curve(curves, budget), "curve_ci_low": [b[0] for b in band],
            "curve_ci_high": [b[1] for b in band],
        }
    reach: dict[str, Any] = {}
    comparison: dict[str, Any] = {}
    if BASELINE in per_strategy:
        base_mean_final = per_strategy[BASELINE]["final_best_val_mean"]
        base_mean_curve = per_strategy[BASELINE]["mean_curve"]
        for s in strategies:
            if s == BASELINE:
                continue
            common = [seed for seed in seeds if (s, seed) in by and (BASELINE, seed) in by]
            a = [by[(s, seed)] for seed in common]
            b = [by[(BASELINE, seed)] for seed in common]
            comparison[s] = {
                "seeds": common,
                "auc": paired([auc(r["curve"], budget) for r in a], [auc(r["curve"], budget) for r in b]),
                "final_best_val": paired([r["final_best_val"] for r in a], [r["final_best_val"] for r in b]),
                "test_of_best": paired([r["best"]["test_acc"] if r["best"] else None for r in a],
                                       [r["best"]["test_acc"] if r["best"] else None for r in b]),
            }
            per_seed = []
            for seed in common:
                curve = by[(s, seed)]["curve"]
                target_same = by[(BASELINE, seed)]["final_best_val"]
                k_same = first_reach(curve, target_same)
                per_seed.append({"seed": seed, "random_final_best": target_same,
                                 "random_reached_at": first_reach(by[(BASELINE, seed)]["curve"], target_same),
                                 "trainings_to_reach_same_seed": k_same,
                                 "trainings_to_reach_same_seed_round_end": round_up(k_same, batch, budget),
                                 "trainings_to_reach_random_mean": first_reach(curve, base_mean_final)})
            ks = [p["trainings_to_reach_same_seed"] for p in per_seed]
            reached = [k for k in ks if k is not None]
            k_mean_curve = first_reach(per_strategy[s]["mean_curve"], base_mean_final)
            half = budget / 2
            reach[s] = {
                "per_seed": per_seed, "reached_seeds": len(reached), "seeds": len(ks),
                "mean_trainings_same_seed": mean([float(k) for k in reached]) if len(reached) == len(ks) and ks
                else None,
                # unreached seeds counted as budget + 1 (a lower bound of the true mean)
                "mean_trainings_same_seed_lower_bound": mean([float(k if k is not None else budget + 1) for k in ks]),
                "mean_curve_trainings_to_reach_random_mean": k_mean_curve,
                "random_mean_curve_reaches_own_final_at": first_reach(base_mean_curve, base_mean_final),
                "goal_trainings": half,
                "goal_met_seeds": sum(k is not None and k <= half for k in ks),
                "goal_met_seeds_round_end": sum(k is not None and round_up(k, batch, budget) <= half for k in ks),
            }
    return {"per_strategy": per_strategy, "reach": reach, "comparison": comparison}


# ------------------------------------------------------------------------------------------------ report


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}"


def checkpoints(budget: int) -> list[int]:
    step = 5 if budget >= 10 else 1
    points = list(range(step, budget + 1, step))
    if points[-1] != budget:
        points.append(budget)
    return [1] + points if points[0] != 1 else points


def k_text(k: int | None, budget: int) -> str:
    return f"not reached (> {budget})" if k is None else str(k)


def ci_text(m: float | None, ci: Sequence[float | None] | None) -> str:
    if m is None:
        return "-"
    if not ci or ci[0] is None:
        return pct(m)
    return f"{pct(m)} [{pct(ci[0])}, {pct(ci[1])}]"


def diff_text(p: dict[str, Any]) -> str:
    return (f"{100 * p['mean_diff']:+.2f} [{100 * p['ci_low']:+.2f}, {100 * p['ci_high']:+.2f}]"
            if p["mean_diff"] is not None else "-")


def p_text(p: dict[str, Any]) -> str:
    return "-" if p["wilcoxon_p"] is None else f"{p['wilcoxon_p']:.3f}"


def sig_words(p: dict[str, Any]) -> str:
    if p["significant"]:
        return "significant (Wilcoxon p < 0.05)"
    if p["ci_excludes_zero"]:
        return (f"not significant by the Wilcoxon test (p = {p_text(p)}), although the paired bootstrap interval "
                "excludes 0")
    return f"**not significant** (Wilcoxon p = {p_text(p)}, bootstrap interval includes 0)"


def task_tables(t: dict[str, Any], budget: int, batch: int) -> list[str]:
    a, results = t["analysis"], t["searches"]
    lines = ["#### Per arm (mean over seeds [95% bootstrap interval])", "",
             "| arm | seeds | final best val acc (%) | test acc of best-by-val (%) "
             "| area under best-so-far curve (%) | mean wall time (s) | stopped / failed trials |",
             "|---|---|---|---|---|---|---|"]
    for s, row in a["per_strategy"].items():
        lines.append(f"| `{s}`: {row['label']} | {len(row['seeds'])} | "
                     f"{ci_text(row['final_best_val_mean'], row['final_best_val_ci'])} | "
                     f"{ci_text(row['test_of_best_mean'], row['test_of_best_ci'])} | "
                     f"{ci_text(row['auc_mean'], row['auc_ci'])} | {fmt(row['seconds_mean'], 0)} | "
                     f"{row['stopped_total']} / {row['failed_total']} |")
    points = checkpoints(budget)
    lines += ["", "#### Mean best-so-far validation accuracy (%) after N trainings [95% bootstrap interval over seeds]",
              "", "| arm | " + " | ".join(f"N={n}" for n in points) + " |", "|---|" + "---|" * len(points)]
    for s, row in a["per_strategy"].items():
        lines.append(f"| `{s}` | " + " | ".join(
            ci_text(row["mean_curve"][n - 1], (row["curve_ci_low"][n - 1], row["curve_ci_high"][n - 1]))
            for n in points) + " |")
    if a["comparison"]:
        lines += ["", "#### Paired comparison with `random` over seeds (arm minus random, points; mean [95% paired "
                      "bootstrap interval]; wins/ties/losses; two-sided Wilcoxon signed-rank p)", "",
                  "| arm | area under the curve | W/T/L | p | final best val | W/T/L | p | test of best | W/T/L | p |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s, c in a["comparison"].items():
            cells = []
            for key in ("auc", "final_best_val", "test_of_best"):
                p = c[key]
                cells += [diff_text(p), f"{p['wins']}/{p['ties']}/{p['losses']}", p_text(p)]
            lines.append(f"| `{s}` | " + " | ".join(cells) + " |")
    if a["reach"]:
        lines += ["", f"#### Trainings needed to reach random search's final best (of the same seed; budget {budget})",
                  "", "| arm | " + " | ".join(f"seed {p['seed']}" for p in next(iter(a["reach"].values()))["per_seed"])
                  + " | mean (unreached = budget + 1) | seeds within 50% (counted at round end) | mean curve reaches "
                  "random's mean final best at |",
                  "|---|" + "---|" * (len(next(iter(a["reach"].values()))["per_seed"]) + 3)]
        for s, row in a["reach"].items():
            ks = [k_text(p["trainings_to_reach_same_seed"], budget) for p in row["per_seed"]]
            m = row["mean_trainings_same_seed"]
            mt = fmt(m, 1) if m is not None else f">= {fmt(row['mean_trainings_same_seed_lower_bound'], 1)}"
            lines.append(f"| `{s}` | " + " | ".join(ks) + f" | {mt} | {row['goal_met_seeds']} / {row['seeds']} "
                         f"({row['goal_met_seeds_round_end']} / {row['seeds']}) | "
                         f"{k_text(row['mean_curve_trainings_to_reach_random_mean'], budget)} (random's own: "
                         f"{row['random_mean_curve_reaches_own_final_at']}) |")
        base = [p["random_reached_at"] for p in next(iter(a["reach"].values()))["per_seed"]]
        lines += ["", f"(Random search itself reached its final best at training {', '.join(map(str, base))}.)"]
    lines += ["", "#### Per search", "",
              "| arm | seed | final best val (%) | best found at training # | test of best (%) | best's status, "
              "epochs | params | ok / stopped / failed | wall (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b = r["best"] or {}
        lines.append(f"| `{r['strategy']}` | {r['seed']} | {pct(r['final_best_val'])} | {b.get('position', '-')} | "
                     f"{pct(b.get('test_acc'))} | {b.get('status', '-')}, {b.get('epochs', '-')} | "
                     f"{b.get('params', '-')} | {r['ok']} / {r['stopped']} / {r['failed']} | {r['seconds']:.0f} |")
    return lines


def verdict_lines(task: str, t: dict[str, Any], budget: int) -> list[str]:
    a = t["analysis"]
    ps = a["per_strategy"]
    out = []
    for s, c in a["comparison"].items():
        r = a["reach"][s]
        row, base = ps[s], ps[BASELINE]
        out.append(
            f"* **{task}, `{s}` vs `random`**: final best val "
            f"{ci_text(row['final_best_val_mean'], row['final_best_val_ci'])}"
            f"% vs {ci_text(base['final_best_val_mean'], base['final_best_val_ci'])}%, test of best "
            f"{ci_text(row['test_of_best_mean'], row['test_of_best_ci'])}% vs "
            f"{ci_text(base['test_of_best_mean'], base['test_of_best_ci'])}%. Area under the best-so-far curve: "
            f"{diff_text(c['auc'])} points ({c['auc']['wins']}/{c['auc']['ties']}/{c['auc']['losses']} "
            f"seeds better/tied/worse), {sig_words(c['auc'])}. Final best val: {diff_text(c['final_best_val'])} "
            f"points, {sig_words(c['final_best_val'])}. Test of best: {diff_text(c['test_of_best'])} points, "
            f"{sig_words(c['test_of_best'])}. It reached random's same-seed final best within 50% of the budget "
            f"on {r['goal_met_seeds']}/{r['seeds']} seeds.")
    return out


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    n_seeds = len(report["seeds"])
    min_p = 2 / 2 ** n_seeds
    lines = [
        "# Search efficiency: random vs regularised evolution vs predictor/proxy-ranked evolution", "",
        f"Generated {report['date']} by `benchmarks/search_efficiency.py` (commit `{report['commit']}`).", "",
        f"Command: `{report['command']}`", "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, torch {m['torch']}, ray {m['ray']}. "
        f"{report['machine_note']} Sum of the {report['n_searches']} searches' wall times: "
        f"{report['searches_seconds_sum']:.0f} s ({report['searches_seconds_sum'] / 60:.1f} min); wall time of the "
        f"invocation that wrote this report: {report['total_seconds']:.0f} s ({report['searches_run']} search(es) "
        "run or resumed by it, the rest read back from `--workdir`).", "",
        "## Setup", "",
        "* Every search is a real `nas.search.run_search` with the platform's default `SearchConfig` except for: the "
        "task's space and dataset, the arm's strategy and scorers, `seeds: []`, the budget, the batch, the epochs, "
        "the seed and `predictor_path`. Ray Tune with ASHA "
        f"(grace period {report['base_config']['tune']['grace_period']},"
        f" reduction factor {report['base_config']['tune']['reduction_factor']}), "
        f"{report['base_config']['train']['optimizer']} lr {report['base_config']['train']['lr']}, objectives "
        f"{report['base_config']['objectives']}, limits {report['base_config']['limits']}; each search in its own "
        "SQLite store.",
        "* **Equal budgets** within a task: every search of a task trains exactly the same number of candidates "
        "(" + "; ".join(f"{k}: **{t['budget']}** candidates in rounds of {t['batch']}, at most {t['epochs']} epochs "
                        "each" for k, t in report["tasks"].items()) + f"); seeds {report['seeds']} (the seed also "
        "fixes the data split and the training seed, so the arms of one seed share them and can be compared "
        "pairwise).",
        "* **No seed networks** (`seeds: []`): every candidate comes from the strategy.",
        "* Why mnist1d has a smaller budget: one default-length mnist1d search (30 candidates, 20 epochs) measured "
        "~6 min on this shared machine against ~2 min for digits, so 2 tasks x 3 arms x 5 seeds would not fit "
        "in ~70 min; mnist1d uses 20 candidates (2 rounds of 10) of at most 10 epochs instead. Digits keeps the "
        "earlier report's 30 / 10 / 20 epochs.",
        "* Arms: " + "; ".join(f"`{s}` = {LABELS[s]} ({json.dumps(STRATEGIES[s])})" for s in report["strategies"])
        + ".",
        "* **Predictor: a leave-one-out prior per task, never the package's default.** "
        "`OnnxNetPredictor.default()` learned from 300 einspace/digits and 300 einspace-1d/mnist1d trainings "
        "(`benchmarks/results/predictor/`), i.e. from the benchmarked tasks themselves; an earlier version of this "
        "benchmark used it, which leaked the test tasks into the `ranked` arm. Here every arm's `predictor_path` "
        "is the prior that never saw the task (only `ranked` and the optional ranked arms use it; `zen` needs no "
        "training):", "",
        "| task | space | dataset | input | val set | epochs per trial | prior (`predictor_path`) | it learned from "
        "(labelled architectures) | it never saw |", "|---|---|---|---|---|---|---|---|---|"]
    for task, t in report["tasks"].items():
        pi = t["prior"]
        learned = ", ".join(f"{k} {v}" for k, v in pi["learned_from"].items())
        lines.append(f"| `{task}` | `{t['space']}` | `{t['dataset']}` | {t['input_shape']} | {t['val_size']} | "
                     f"{t['epochs']} | `{pi['path']}` | {learned} (= {pi['examples']}) | {pi['never_saw']} |")
    lines += [
        "", "  The digits prior has still seen *other* networks on digits (nb201/digits) and the einspace grammar on "
        "another dataset (einspace-1d/mnist1d); the mnist1d prior has seen 2-D einspace on digits. That is the "
        "transfer a user of a new task gets; see `benchmarks/results/priors/README.md`.",
        "* Best-so-far curve: the best validation accuracy over the first N trained candidates, in trial id order "
        "(the order they were queued); `ok`, `stopped` (ASHA) and `failed` trials all count as trainings; a stopped "
        "trial's accuracy is the one at the epoch where ASHA stopped it. Test accuracy: of the best-by-val trial "
        "(at the same epoch). Area under the curve: the mean of the best-so-far curve over N = 1..budget (so it "
        "rewards finding good networks early as well as the final best).",
        "* Statistics: intervals are 95% percentile bootstrap intervals of the mean over seeds "
        f"({BOOTSTRAP} resamples of the seeds). The paired comparison with `random` uses the per-seed differences "
        "(same seed = same data split and training seed): their mean with a paired bootstrap interval, the "
        "wins/ties/losses, and the two-sided exact Wilcoxon signed-rank test. A difference is called "
        f"**significant only if Wilcoxon p < {ALPHA}**. With {n_seeds} seeds the exact test cannot give p below "
        f"{min_p:.4f} (all {n_seeds} seeds in the same direction), "
        + ("so no difference can reach significance at 0.05 with this many seeds; " if min_p >= ALPHA else "")
        + "a bootstrap interval that excludes 0 with so few seeds is weak evidence (the bootstrap is optimistic "
        "with few samples), and is reported as such.",
        "* A round's candidates are all proposed before any of them is trained, then trained as one Tune run (two "
        "at a time on 2 CPUs). In the first round evolution samples at random like random search; only the ranked "
        "arm selects already, and it queues its best-ranked candidates first, so counting by trial id credits the "
        "ranking inside a round too (the *counted at round end* numbers remove that credit).",
        "", "## Verdict", ""]
    for t in report["tasks"].values():
        lines += t["verdict"]
    lines += ["", "## Results", ""]
    for task, t in report["tasks"].items():
        lines += [f"### {task}: `{t['space']}` on `{t['dataset']}` (prior `{t['prior']['path']}`)", ""]
        lines += task_tables(t, t["budget"], t["batch"]) + [""]
    lines += ["## Reading the numbers", ""] + notes(report)
    if report.get("plot"):
        lines += ["", f"![mean best-so-far curves]({Path(report['plot']).name})"]
    lines += ["", "## Reproduce", "", "```bash", report["command"], "```", "",
              "Resumable: finished searches in `--workdir` are read back, an unfinished one is resumed; partial runs "
              "(`--tasks mnist1d --strategies random --seeds 0`) can be combined by a final run over everything."]
    return "\n".join(lines) + "\n"


def notes(report: dict[str, Any]) -> list[str]:
    out = []
    for task, t in report["tasks"].items():
        ps = t["analysis"]["per_strategy"]
        if BASELINE in ps:
            vals = [r["final_best_val"] for r in t["searches"] if r["strategy"] == BASELINE and r["final_best_val"]]
            if vals:
                out.append(f"* {task}: random search's final best ranges {pct(min(vals))}-{pct(max(vals))}% over "
                           f"{len(vals)} seeds; validation set {t['val_size']} examples (one example = "
                           f"{pct(1 / t['val_size'])} points).")
            for s, row in ps.items():
                if s != BASELINE and STRATEGIES[s]["scorers"] and ps[BASELINE]["seconds_mean"]:
                    out.append(f"* {task}: `{s}` took {row['seconds_mean'] / ps[BASELINE]['seconds_mean']:.2f}x random "
                               "search's mean wall time (scoring the extra proposals with the predictor and `zen`, "
                               "and training whatever it selects; wall times on this shared machine are noisy).")
        stopped = sum(r["stopped"] for r in t["searches"])
        total = sum(r["trials"] for r in t["searches"])
        if total:
            out.append(f"* {task}: ASHA stopped {stopped} of {total} trials ({100 * stopped / total:.0f}%) early; a "
                       "stopped trial counts as a training with its partial accuracy, the same for every arm.")
    for task, t in report["tasks"].items():
        out.append(f"* {task}: regularised evolution (population = batch = {t['batch']}, tournament "
                   f"{max(2, (t['batch'] + 1) // 3)}) gets {t['budget'] // t['batch'] - 1} evolved round(s) in this "
                   "budget; its first round is random sampling.")
    return out


def plot(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tasks = list(report["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = report["tasks"][task]
        x = list(range(1, t["budget"] + 1))
        for s, row in t["analysis"]["per_strategy"].items():
            ys = [math.nan if v is None else 100 * v for v in row["mean_curve"]]
            (line,) = ax.plot(x, ys, lw=2.2, label=f"{s} (mean, 95% CI)", drawstyle="steps-post")
            lo = [math.nan if v is None else 100 * v for v in row["curve_ci_low"]]
            hi = [math.nan if v is None else 100 * v for v in row["curve_ci_high"]]
            ax.fill_between(x, lo, hi, step="post", alpha=0.15, color=line.get_color())
        base = t["analysis"]["per_strategy"].get(BASELINE)
        if base and base["final_best_val_mean"] is not None:
            ax.axhline(100 * base["final_best_val_mean"], ls="--", color="grey", lw=1,
                       label="random's mean final best")
        ax.set_xlabel("candidates trained")
        ax.set_ylabel("best-so-far validation accuracy (%)")
        ax.set_title(f"{t['space']} on {t['dataset']}, {len(report['seeds'])} seeds, prior "
                     f"{Path(t['prior']['path']).name}", fontsize=9)
        lows = [100 * v for r in t["searches"] for v in r["curve"][t["batch"] - 1:] if v is not None]
        if lows:
            ax.set_ylim(max(min(lows) - 2, 0), min(100, max(100 * v for r in t["searches"] for v in r["curve"]
                                                            if v is not None) + 2))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def machine_info() -> dict[str, Any]:
    import ray
    import torch

    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "ray": ray.__version__}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def print_table(report: dict[str, Any]) -> None:
    for task, t in report["tasks"].items():
        print(f"\n== {task} ==")
        print("\n".join(task_tables(t, t["budget"], t["batch"])))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS, choices=list(TASKS))
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES, choices=list(STRATEGIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=None,
                        help="candidates trained per search (default: each task's, " +
                        ", ".join(f"{k} {v['budget']}" for k, v in TASKS.items()) + ")")
    parser.add_argument("--batch", type=int, default=None, help="candidates trained per round (default: each "
                        "task's, " + ", ".join(f"{k} {v['batch']}" for k, v in TASKS.items()) + ")")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per trial (default: each task's, "
                        + ", ".join(f"{k} {v['epochs']}" for k, v in TASKS.items()) + ")")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "nas_search_efficiency",
                        help="where the per-search SQLite stores live (default $TMPDIR/nas_search_efficiency)")
    parser.add_argument("--fresh", action="store_true", help="delete the requested searches first")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_efficiency.json")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--machine-note", default="Shared machine: other CPU jobs (another engineer's tests) ran "
                        "beside this benchmark, so wall times are inflated and noisy.")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.workdir = args.workdir.resolve()
    os.chdir(ROOT)  # the priors' paths in the configs are relative to the repository root

    tasks = [t for t in TASKS if t in args.tasks]
    strategies = [s for s in STRATEGIES if s in args.strategies]  # fixed order, random first
    settings = {t: {"budget": args.budget or TASKS[t]["budget"], "batch": args.batch or TASKS[t]["batch"],
                    "epochs": args.epochs or TASKS[t]["epochs"]} for t in tasks}
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for task in tasks:
            for s in strategies:
                for seed in args.seeds:
                    for p in args.workdir.glob(f"{task}-{s}-s{seed}.*"):
                        p.unlink()
                    shutil.rmtree(args.workdir / f"{task}-{s}-s{seed}_artifacts", ignore_errors=True)
    started = time.perf_counter()
    notes_by_task: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    ran = 0
    for seed in args.seeds:  # interleaved, so that partial runs and the neighbours' load are spread evenly
        for task in tasks:
            st = settings[task]
            for s in strategies:
                config = search_config(task, s, seed, st["budget"], st["batch"], st["epochs"])
                note_path = args.workdir / f"{task}-{s}-s{seed}.json"
                before = json.loads(note_path.read_text()).get("status") if note_path.exists() else None
                notes_by_task[task].append(run_one(task, s, seed, config, args.workdir))
                ran += before != "finished"
                print(f"[{time.perf_counter() - started:.0f} s since start]", flush=True)
    total = time.perf_counter() - started
    from nas.data import load_dataset

    report_tasks: dict[str, Any] = {}
    for task in tasks:
        st = settings[task]
        results = [read_search(n) for n in notes_by_task[task]]
        ds = load_dataset(TASKS[task]["dataset"], seed=args.seeds[0])
        t = {"space": TASKS[task]["space"], "dataset": TASKS[task]["dataset"],
             "input_shape": "x".join(str(d) for d in ds.val.x.shape[1:]), "val_size": len(ds.val),
             "test_size": len(ds.test), **st, "prior": prior_info(task),
             "base_config": search_config(task, BASELINE, args.seeds[0], st["budget"], st["batch"],
                                          st["epochs"]).to_dict(),
             "analysis": analyse(results, strategies, args.seeds, st["budget"], st["batch"]), "searches": results,
             "searches_seconds_sum": sum(r["seconds"] for r in results)}
        t["verdict"] = verdict_lines(task, t, st["budget"])
        report_tasks[task] = t
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/search_efficiency.py"] + argv_list)
    first = report_tasks[tasks[0]]
    report: dict[str, Any] = {
        "command": command, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": git_commit(), "machine": machine_info(), "machine_note": args.machine_note,
        "total_seconds": total, "searches_run": ran, "tasks_order": tasks, "strategies": strategies,
        "seeds": args.seeds, "budget": first["budget"], "batch": first["batch"],
        "settings": settings, "base_config": first["base_config"],
        "configs": {s: STRATEGIES[s] for s in strategies}, "tasks": report_tasks,
        "n_searches": sum(len(t["searches"]) for t in report_tasks.values()),
        "searches_seconds_sum": sum(t["searches_seconds_sum"] for t in report_tasks.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_plot:
        p = plot(report, args.out.with_suffix(".png"))
        report["plot"] = None if p is None else str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print_table(report)
    print()
    for t in report_tasks.values():
        print("\n".join(t["verdict"]))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
