"""Sampling benchmark: derivation throughput, end-to-end validity and exporter speed of the einspace spaces.

For each einspace input (``image 3x32x32``, ``image 1x8x8``, ``sequence 1x40``, seeds ``0..N-1``) and every other
built-in space on its native input (``--space-seeds`` seeds each):

1. times ``space.sample(seed)`` alone (derivations/second, cold and "warm" after the first 50 samples);
2. builds every candidate through the backbone -- graph, torch module, forward pass, ONNX export, full ONNX check,
   ONNX Runtime comparison -- counting successes per stage and timing export + check;
3. summarises sizes (params and FLOPs from the graph, i.e. with the classifier head; derivation depth; module nodes);

then compares the direct ONNX emitter with torch's dynamo exporter on the first ``--dynamo`` 3x32x32 candidates.

Run from the repository root::

    python benchmarks/sampling.py [--seeds 1000] [--space-seeds 500] [--dynamo 50] \
        [--out benchmarks/results/sampling.json] [--quick]

Results go to ``--out`` (JSON) and the same path with ``.md`` (markdown table). The run is deterministic apart from
the timings: module weights come from ``torch.manual_seed(seed)``, inputs from seeded generators.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import json
import logging
import math
import os
import platform
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from nas.compile.torch import compile_graph  # noqa: E402
from nas.export.onnx import export_onnx, export_onnx_dynamo  # noqa: E402
from nas.export.verify import compare_with_onnxruntime  # noqa: E402
from nas.ir.build import build_graph  # noqa: E402
from search_spaces.spaces import get_space  # noqa: E402

INPUTS: list[tuple[str, str, tuple[int, ...]]] = [
    ("image 3x32x32", "einspace", (3, 32, 32)),
    ("image 1x8x8", "einspace", (1, 8, 8)),
    ("sequence 1x40", "einspace-1d", (1, 40)),
]
# every other built-in space, on its native input, with --space-seeds seeds each
SPACE_INPUTS: list[tuple[str, str, tuple[int, ...]]] = [
    ("nb201 3x32x32", "nb201", (3, 32, 32)),
    ("nb-macro 3x32x32", "nb-macro", (3, 32, 32)),
    ("hnb201 3x32x32", "hnb201", (3, 32, 32)),
    ("hnb201-shared 3x32x32", "hnb201-shared", (3, 32, 32)),
    ("hnb201-einspace 3x32x32", "hnb201-einspace", (3, 32, 32)),
    ("seq-templates 1x40", "seq-templates", (1, 40)),
]
NUM_CLASSES = 10
BATCH = 2
WARM_SKIP = 50  # samples excluded from the "warm" throughput figure (sampler caches fill up first)
STAGES = ("build", "compile", "forward", "export", "checker", "ort_match")
MAX_FAILURES_KEPT = 10
SLOWEST_KEPT = 5  # slowest export+check candidates listed per input
DETERMINISM_SEEDS = 20  # seeds re-sampled in a fresh space to check that the same seed gives the same derivation

console = Console()
if not console.is_terminal or console.width < 150:  # logs and narrow terminals: do not squeeze the table
    console = Console(width=170)


# --- helpers ------------------------------------------------------------------------------------------------------


def percentiles(values: Sequence[float], qs: Sequence[float]) -> dict[str, float | None]:
    """``{"p10": ..., "max": ...}`` (linear interpolation); ``None`` for an empty list."""
    arr = np.asarray(values, dtype=np.float64)
    out: dict[str, float | None] = {}
    for q in qs:
        key = "max" if q == 100 else f"p{q:g}"
        out[key] = float(np.percentile(arr, q)) if arr.size else None
    return out


def fmt_count(value: float | None) -> str:
    """A human number: 1234 -> 1.23k, 4_500_000 -> 4.50M."""
    if value is None:
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.2f}{suffix}"
    return f"{value:.0f}"


def fmt_int(value: float | None) -> str:
    """An integer-valued statistic: whole numbers as such, interpolated percentiles with one decimal."""
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def fmt_num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def short_error(err: BaseException, limit: int = 300) -> str:
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quiet_dynamo() -> None:
    """Silence torch.export / dynamo / onnxscript logging and warnings (they are very chatty)."""
    warnings.filterwarnings("ignore")
    for name in ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch._inductor",
                 "torch.fx", "torch._subclasses", "torch.utils._sympy", "onnxscript", "onnx_ir", "onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def swallow_output():
    """Capture stdout/stderr written from Python (the dynamo exporter prints progress lines)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def machine_info() -> dict[str, Any]:
    import onnxruntime

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def git_commit() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nas", "search_spaces"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or None
        return f"{commit}+dirty" if commit and dirty.stdout.strip() else commit
    except Exception:  # noqa: BLE001 - informational only
        return None


# --- 1. derivation throughput -------------------------------------------------------------------------------------


def measure_sampling(space_name: str, shape: tuple[int, ...], seeds: int) -> tuple[Any, list[Any], dict[str, Any]]:
    """Create the space (timed separately), then time ``space.sample(seed)`` for every seed."""
    start = time.perf_counter()
    space = get_space(space_name, shape)
    space_s = time.perf_counter() - start
    derivations: list[Any] = []
    times: list[float] = []
    failures: list[dict[str, Any]] = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        try:
            d = space.sample(seed)
        except Exception as err:  # noqa: BLE001 - recorded
            times.append(time.perf_counter() - t0)
            derivations.append(None)
            failures.append({"seed": seed, "stage": "sample", "message": short_error(err)})
            continue
        times.append(time.perf_counter() - t0)
        derivations.append(d)
    total = sum(times)
    skip = WARM_SKIP if seeds > 2 * WARM_SKIP else seeds // 2
    warm_total = sum(times[skip:])
    per_ms = [t * 1e3 for t in times]
    stats = {
        "space_create_s": space_s, "samples": seeds, "total_s": total,
        "derivations_per_s": seeds / total if total > 0 else None,
        "warm_skip": skip,
        "warm_derivations_per_s": (seeds - skip) / warm_total if warm_total > 0 else None,
        "sample_ms": percentiles(per_ms, (50, 90, 99, 100)),
        "sample_failures": failures,
    }
    return space, derivations, stats


def check_determinism(space_name: str, shape: tuple[int, ...], derivations: list[Any]) -> dict[str, Any]:
    """Re-sample the first seeds in a fresh space: the derivation strings must be identical."""
    fresh = get_space(space_name, shape)
    n = min(DETERMINISM_SEEDS, len(derivations))
    mismatched = [seed for seed in range(n)
                  if derivations[seed] is not None and str(fresh.sample(seed)) != str(derivations[seed])]
    return {"seeds_checked": n, "mismatched_seeds": mismatched}


# --- 2. backbone per candidate ------------------------------------------------------------------------------------


def run_candidates(space: Any, derivations: list[Any], shape: tuple[int, ...], label: str) -> dict[str, Any]:
    counts = {stage: 0 for stage in STAGES}
    failures: list[dict[str, Any]] = []
    num_failures = 0
    export_check_ms: list[float] = []
    export_ms: list[float] = []
    check_ms: list[float] = []
    candidate_ms: list[float] = []
    params: list[int] = []
    flops: list[int] = []
    depths: list[int] = []
    nodes: list[int] = []
    graph_nodes: list[int] = []
    onnx_nodes: list[int] = []
    max_abs_diffs: list[float] = []
    param_mismatch: list[int] = []
    slowest: list[dict[str, Any]] = []  # the slowest export+check candidates, kept sorted, at most SLOWEST_KEPT
    n = len(derivations)
    t_start = time.perf_counter()

    def fail(seed: int, stage: str, message: str) -> None:
        nonlocal num_failures
        num_failures += 1
        if len(failures) < MAX_FAILURES_KEPT:
            failures.append({"seed": seed, "stage": stage, "message": message})

    for seed, d in enumerate(derivations):
        if seed and seed % 250 == 0:
            console.log(f"  {label}: {seed}/{n} candidates ({time.perf_counter() - t_start:.0f}s)")
        if d is None:
            fail(seed, "sample", "no derivation")
            continue
        depths.append(d.depth)
        nodes.append(d.cost.nodes)
        t_cand = time.perf_counter()
        stage = "build"
        try:
            graph = build_graph(space, d, NUM_CLASSES)
            counts["build"] += 1
            params.append(graph.num_params())
            flops.append(graph.flops())
            graph_nodes.append(sum(1 for _ in graph.op_nodes()))

            stage = "compile"
            torch.manual_seed(seed)
            module = compile_graph(graph)
            module.eval()
            counts["compile"] += 1
            module_params = sum(p.numel() for p in module.parameters())
            if module_params != params[-1]:
                param_mismatch.append(seed)

            stage = "forward"
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(BATCH, *shape, generator=gen)
            with torch.no_grad():
                y = module(x)
            if tuple(y.shape) != (BATCH, NUM_CLASSES):
                raise ValueError(f"output shape {tuple(y.shape)}, expected {(BATCH, NUM_CLASSES)}")
            if not bool(torch.isfinite(y).all()):
                raise ValueError("output has non-finite values")
            counts["forward"] += 1

            stage = "export"
            meta = {"space": space.name, "derivation": str(d), "input_shape": ",".join(map(str, shape)),
                    "num_classes": str(NUM_CLASSES)}
            t0 = time.perf_counter()
            model = export_onnx(graph, module, metadata=meta)
            t1 = time.perf_counter()
            counts["export"] += 1
            onnx_nodes.append(len(model.graph.node))

            stage = "checker"
            onnx.checker.check_model(model, full_check=True)
            t2 = time.perf_counter()
            counts["checker"] += 1
            export_ms.append((t1 - t0) * 1e3)
            check_ms.append((t2 - t1) * 1e3)
            export_check_ms.append((t2 - t0) * 1e3)
            if len(slowest) < SLOWEST_KEPT or export_check_ms[-1] > slowest[-1]["export_check_ms"]:
                slowest.append({"seed": seed, "export_check_ms": round(export_check_ms[-1], 2),
                                "export_ms": round(export_ms[-1], 2), "params": params[-1],
                                "onnx_mb": round(model.ByteSize() / 2**20, 2), "onnx_nodes": onnx_nodes[-1]})
                slowest.sort(key=lambda r: -r["export_check_ms"])
                del slowest[SLOWEST_KEPT:]

            stage = "ort_match"
            result = compare_with_onnxruntime(model, module, shape, batch=BATCH, seed=seed)
            max_abs_diffs.append(result.max_abs_diff)
            if not result.ok:
                raise ValueError(f"ONNX Runtime output differs: max_abs_diff={result.max_abs_diff:.3g}")
            counts["ort_match"] += 1
        except Exception as err:  # noqa: BLE001 - every failure is recorded per stage
            fail(seed, stage, short_error(err))
        candidate_ms.append((time.perf_counter() - t_cand) * 1e3)

    finite_diffs = [v for v in max_abs_diffs if math.isfinite(v)]
    return {
        "n": n,
        "counts": counts,
        "num_failures": num_failures,
        "failures": failures,
        "wall_s": time.perf_counter() - t_start,
        "slowest_export_check": slowest,
        "params_graph_vs_module_mismatch_seeds": param_mismatch[:MAX_FAILURES_KEPT],
        "params_graph_vs_module_mismatches": len(param_mismatch),
        "timing_ms": {
            "export_check": percentiles(export_check_ms, (50, 90, 99, 100)),
            "export": percentiles(export_ms, (50, 90)),
            "checker": percentiles(check_ms, (50, 90)),
            "candidate_all_stages": percentiles(candidate_ms, (50, 90)),
        },
        "sizes": {
            "params": percentiles(params, (10, 50, 90, 99, 100)),
            "flops": percentiles(flops, (50, 99, 100)),
            "depth": percentiles(depths, (50, 90, 100)),
            "module_nodes": percentiles(nodes, (50, 90, 100)),
            "graph_op_nodes": percentiles(graph_nodes, (50, 90, 100)),
            "onnx_nodes": percentiles(onnx_nodes, (50, 90, 100)),
        },
        "ort_max_abs_diff": {"max": max(finite_diffs) if finite_diffs else None,
                             "p50": float(np.median(finite_diffs)) if finite_diffs else None},
    }


# --- 4. exporter comparison ---------------------------------------------------------------------------------------


def compare_exporters(space: Any, derivations: list[Any], shape: tuple[int, ...], count: int) -> dict[str, Any]:
    quiet_dynamo()
    ours_ms: list[float] = []
    dynamo_ms: list[float] = []
    dynamo_failures: list[dict[str, Any]] = []
    num_dynamo_failed = 0
    ours_failed = 0
    tried = 0
    first_dynamo_ms: float | None = None
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nas-bench-dynamo-") as tmp:
        path = Path(tmp) / "model.onnx"
        for seed, d in enumerate(derivations[:count]):
            if d is None:
                continue
            tried += 1
            if seed and seed % 10 == 0:
                console.log(f"  dynamo: {seed}/{count} ({time.perf_counter() - t_start:.0f}s)")
            try:
                graph = build_graph(space, d, NUM_CLASSES)
                torch.manual_seed(seed)
                module = compile_graph(graph).eval()
                t0 = time.perf_counter()
                model = export_onnx(graph, module)
                onnx.checker.check_model(model, full_check=True)
                ours = (time.perf_counter() - t0) * 1e3
            except Exception:  # noqa: BLE001 - counted (should not happen: stage 2 checks the same thing)
                ours_failed += 1
                continue
            try:
                with swallow_output(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    export_onnx_dynamo(module, shape, path)
                    theirs = (time.perf_counter() - t0) * 1e3
            except Exception as err:  # noqa: BLE001 - counted and skipped
                num_dynamo_failed += 1
                if len(dynamo_failures) < MAX_FAILURES_KEPT:
                    dynamo_failures.append({"seed": seed, "message": short_error(err)})
                continue
            finally:
                path.unlink(missing_ok=True)
            if first_dynamo_ms is None:
                first_dynamo_ms = theirs
            ours_ms.append(ours)
            dynamo_ms.append(theirs)
    ours_med = float(np.median(ours_ms)) if ours_ms else None
    dyn_med = float(np.median(dynamo_ms)) if dynamo_ms else None
    return {
        "input": "image 3x32x32",
        "candidates_tried": tried,
        "compared": len(ours_ms),
        "dynamo_failed": num_dynamo_failed,
        "dynamo_failures": dynamo_failures,
        "ours_failed": ours_failed,
        "ours_export_check_ms": percentiles(ours_ms, (50, 90, 100)),
        "dynamo_export_ms": percentiles(dynamo_ms, (50, 90, 100)),
        "dynamo_first_call_ms": first_dynamo_ms,
        "ratio_dynamo_over_ours_median": dyn_med / ours_med if ours_med and dyn_med else None,
        "wall_s": time.perf_counter() - t_start,
    }


# --- report -------------------------------------------------------------------------------------------------------

COLUMNS = ["input", "N", "compile", "forward", "export", "checker", "ort_match", "deriv/s (warm)",
           "export+check ms p50 (p90)", "params p50 / p99", "depth p50 / max"]


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        c, n = r["candidates"]["counts"], r["candidates"]["n"]
        s = r["sampling"]
        ec = r["candidates"]["timing_ms"]["export_check"]
        sizes = r["candidates"]["sizes"]
        rows.append([
            r["label"], str(n), *(f"{c[k]}/{n}" for k in ("compile", "forward", "export", "checker", "ort_match")),
            f"{fmt_num(s['derivations_per_s'], 0)} ({fmt_num(s['warm_derivations_per_s'], 0)})",
            f"{fmt_num(ec['p50'], 2)} ({fmt_num(ec['p90'], 2)})",
            f"{fmt_count(sizes['params']['p50'])} / {fmt_count(sizes['params']['p99'])}",
            f"{fmt_int(sizes['depth']['p50'])} / {fmt_int(sizes['depth']['max'])}",
        ])
    return rows


def exporter_line(ex: dict[str, Any]) -> str:
    ours, dyn = ex["ours_export_check_ms"]["p50"], ex["dynamo_export_ms"]["p50"]
    ratio = ex["ratio_dynamo_over_ours_median"]
    return (f"Exporter ({ex['input']}, {ex['compared']} candidates compared, {ex['dynamo_failed']} skipped because "
            f"the dynamo exporter failed): export_onnx + full check median {fmt_num(ours, 2)} ms; "
            f"torch.onnx.export(dynamo=True) median {fmt_num(dyn, 0)} ms; ratio dynamo/ours = "
            f"{fmt_num(ratio, 0)}x")


def print_report(report: dict[str, Any]) -> None:
    table = Table(title="einspace sampling benchmark", show_lines=False)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col == "input" else "right")
    for row in table_rows(report["inputs"]):
        table.add_row(*row)
    console.print(table)
    for r in report["inputs"]:
        sizes = r["candidates"]["sizes"]
        console.print(f"[bold]{r['label']}[/]: params p10/p50/p90/p99/max = "
                      + " / ".join(fmt_count(sizes["params"][k]) for k in ("p10", "p50", "p90", "p99", "max"))
                      + f"; FLOPs p50/p99 = {fmt_count(sizes['flops']['p50'])} / {fmt_count(sizes['flops']['p99'])}"
                      + f"; depth p50/p90/max = {fmt_int(sizes['depth']['p50'])} / "
                        f"{fmt_int(sizes['depth']['p90'])} / {fmt_int(sizes['depth']['max'])}"
                      + f"; module nodes p50/p90 = {fmt_int(sizes['module_nodes']['p50'])} / "
                        f"{fmt_int(sizes['module_nodes']['p90'])}")
        slow = r["candidates"]["slowest_export_check"]
        if slow:
            console.print("  slowest export+check: " + "; ".join(
                f"seed {x['seed']} {x['export_check_ms']:.0f} ms ({x['onnx_mb']:.1f} MB ONNX, {fmt_count(x['params'])} "
                f"params)" for x in slow[:3]))
        fails = r["candidates"]["failures"] + r["sampling"]["sample_failures"]
        for f in fails[:5]:
            console.print(f"  [red]failure[/] seed {f['seed']} stage {f['stage']}: {f['message']}", markup=True)
        if r["candidates"]["params_graph_vs_module_mismatches"]:
            console.print(f"  [red]graph vs module parameter count differs[/] for seeds "
                          f"{r['candidates']['params_graph_vs_module_mismatch_seeds']}")
        if r["determinism"]["mismatched_seeds"]:
            console.print(f"  [red]non-deterministic seeds[/]: {r['determinism']['mismatched_seeds']}")
    if report.get("exporters"):
        console.print(exporter_line(report["exporters"]))
    console.print(f"total runtime {report['total_runtime_s']:.1f} s")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# einspace sampling benchmark", "",
        f"Command: `{report['command']}`", "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']} ({m['torch_threads']} threads), "
        f"onnx {m['onnx']}, onnxruntime {m['onnxruntime']}; load average at start {m.get('load_average_at_start')}; "
        f"date {m['date']}; commit {report.get('commit')}; "
        f"total runtime {report['total_runtime_s']:.0f} s.", "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if c == "input" else "---:" for c in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report["inputs"])]
    lines += ["", "Derivations/s times `space.sample(seed)` alone after the space is created; (warm) excludes the "
              f"first {report['inputs'][0]['sampling']['warm_skip']} samples. Params and FLOPs come from the graph "
              "(classifier head included).", "",
              "| input | params p10 / p50 / p90 / p99 / max | FLOPs p50 / p99 | depth p50 / p90 / max "
              "| module nodes p50 / p90 |", "|---|---:|---:|---:|---:|"]
    for r in report["inputs"]:
        s = r["candidates"]["sizes"]
        lines.append(
            f"| {r['label']} | " + " / ".join(fmt_count(s["params"][k]) for k in ("p10", "p50", "p90", "p99", "max"))
            + f" | {fmt_count(s['flops']['p50'])} / {fmt_count(s['flops']['p99'])}"
            + f" | {fmt_int(s['depth']['p50'])} / {fmt_int(s['depth']['p90'])} / {fmt_int(s['depth']['max'])}"
            + f" | {fmt_int(s['module_nodes']['p50'])} / {fmt_int(s['module_nodes']['p90'])} |")
    lines += ["", "Slowest export+check per input (seed: ms, ONNX size, params):", ""]
    for r in report["inputs"]:
        slow = r["candidates"]["slowest_export_check"][:3]
        lines.append(f"- {r['label']}: " + "; ".join(
            f"seed {x['seed']}: {x['export_check_ms']:.0f} ms, {x['onnx_mb']:.1f} MB, {fmt_count(x['params'])}"
            for x in slow))
    failures = [(r["label"], f) for r in report["inputs"]
                for f in r["sampling"]["sample_failures"] + r["candidates"]["failures"]]
    lines += ["", "Failures: " + ("none." if not failures else "")]
    lines += [f"- {label}, seed {f['seed']}, stage {f['stage']}: {f['message']}" for label, f in failures]
    if report.get("exporters"):
        ex = report["exporters"]
        lines += ["", exporter_line(ex) + "."]
    return "\n".join(lines) + "\n"


# --- main ---------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per input (default 1000; quick: 20)")
    parser.add_argument("--dynamo", type=int, default=None,
                        help="3x32x32 candidates exported with torch's dynamo exporter too (default 50; quick: 2)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sampling.json"),
                        help="JSON output; the markdown table goes next to it with .md")
    parser.add_argument("--space-seeds", type=int, default=None,
                        help="seeds per other built-in space (default 500; quick: 10; 0 skips them)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (20 seeds, 2 dynamo exports)")
    args = parser.parse_args(argv)
    space_seeds = args.space_seeds if args.space_seeds is not None else (10 if args.quick else 500)
    seeds = args.seeds if args.seeds is not None else (20 if args.quick else 1000)
    dynamo = args.dynamo if args.dynamo is not None else (2 if args.quick else 50)
    if seeds < 0 or dynamo < 0 or (dynamo and not seeds):
        parser.error("--seeds and --dynamo must be >= 0 (--seeds 0 skips the einspace inputs, then use --dynamo 0)")

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + list(
        sys.argv[1:] if argv is None else argv))
    t_total = time.perf_counter()
    report: dict[str, Any] = {"command": command, "machine": machine_info(), "commit": git_commit(),
                              "seeds": seeds, "num_classes": NUM_CLASSES, "batch": BATCH, "inputs": []}
    kept: dict[str, tuple[Any, list[Any]]] = {}
    runs = [(label, name, shape, seeds) for label, name, shape in INPUTS if seeds > 0]
    runs += [(label, name, shape, space_seeds) for label, name, shape in SPACE_INPUTS if space_seeds > 0]
    for label, space_name, shape, n_seeds in runs:
        console.log(f"{label}: sampling {n_seeds} derivations")
        space, derivations, sampling = measure_sampling(space_name, shape, n_seeds)
        console.log(f"{label}: {sampling['derivations_per_s']:.0f} derivations/s "
                    f"(warm {fmt_num(sampling['warm_derivations_per_s'], 0)}); building candidates")
        determinism = check_determinism(space_name, shape, derivations)
        candidates = run_candidates(space, derivations, shape, label)
        report["inputs"].append({"label": label, "space": space_name, "input_shape": list(shape), "seeds": n_seeds,
                                 "limits": dataclasses.asdict(space.limits),
                                 "sampling": sampling, "determinism": determinism, "candidates": candidates})
        kept[label] = (space, derivations)
    if dynamo:
        console.log(f"exporter comparison on the first {dynamo} candidates of image 3x32x32")
        space, derivations = kept["image 3x32x32"]
        report["exporters"] = compare_exporters(space, derivations, (3, 32, 32), dynamo)
    report["total_runtime_s"] = time.perf_counter() - t_total

    print_report(report)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    md = out.with_suffix(".md")
    md.write_text(markdown(report))
    console.log(f"wrote {out} and {md}")
    ok = all(r["candidates"]["num_failures"] == 0 and not r["sampling"]["sample_failures"]
             and not r["determinism"]["mismatched_seeds"] for r in report["inputs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
