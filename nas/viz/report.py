"""``nas search report NAME --out report.html``: one self-contained HTML file on a search.

The file needs no network: plotly's JavaScript is embedded once (``plotly.offline.get_plotlyjs()``, what
``include_plotlyjs=True`` embeds) and the architecture pictures are inline SVG. It shows:

1. best-so-far validation accuracy against trials finished and against time since the search began (and against
   the simulated cost in benchmark mode);
2. the Pareto front of validation accuracy against every other objective over **all** trials that have objective
   values (``ok`` and ``stopped``; Optuna's own front only takes complete trials);
3. each pre-training score (the predictor, every zero-cost proxy, the combined rank) against trained validation
   accuracy, with Kendall's tau (Kendall, Biometrika 1938; ``scipy.stats.kendalltau``, tau-b);
4. the distribution of sampled sizes (parameters, FLOPs) of every architecture the search stored, beside those
   it trained;
5. learning curves (validation accuracy per epoch) of the best trials;
6. the failed trials with their errors;
7. the pictures of the top architectures (:mod:`nas.viz.picture`).

The data are gathered first (:func:`collect_report`, a :class:`SearchReport` of plain numbers) and drawn after
(:func:`render_report`), as Optuna's visualization module separates its data from its plotly code.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ScoreCorrelation", "SearchReport", "collect_report", "pareto_mask", "render_report", "write_report"]

TOP_PICTURES = 3
"""How many of the best architectures the report draws."""
TOP_CURVES = 5
"""How many of the best trials' learning curves it plots."""
_STATUS_COLOURS = {"ok": "#1f77b4", "stopped": "#ff7f0e", "failed": "#d62728"}


@dataclass(frozen=True)
class ScoreCorrelation:
    """One pre-training score against trained validation accuracy.

    Attributes:
        name: the scorer (``predictor``, a proxy name, ``combined``).
        scores, accuracies, hashes: the trained architectures with a finite score, aligned.
        kendall_tau: Kendall's tau-b of score against accuracy (``None`` with fewer than 3 points or no spread).
    """

    name: str
    scores: tuple[float, ...]
    accuracies: tuple[float, ...]
    hashes: tuple[str, ...]
    kendall_tau: float | None


@dataclass(frozen=True)
class SearchReport:
    """Everything the report shows, as plain data (see the module docstring for what each part is)."""

    name: str
    header: dict[str, Any]
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    trials: tuple[dict[str, Any], ...]
    best_so_far: tuple[tuple[int, float, float, float | None], ...]   # (trial #, seconds, best val acc, sim cost)
    correlations: tuple[ScoreCorrelation, ...]
    sampled_sizes: dict[str, tuple[float, ...]]
    trained_sizes: dict[str, tuple[float, ...]]
    curves: tuple[dict[str, Any], ...]
    failed: tuple[dict[str, Any], ...]
    top: tuple[dict[str, Any], ...] = field(default=())


def pareto_mask(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[bool]:
    """Which points are not dominated (Pareto optimal) under ``directions`` (``maximize``/``minimize`` each).

    A point dominates another when it is at least as good in every objective and better in one. Written out here
    (O(n^2), fine for a report's thousands of trials) because Optuna computes fronts only over a study's COMPLETE
    trials, and the report wants the stopped ones too.
    """
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    keyed = [[s * v for s, v in zip(signs, p)] for p in points]
    mask = []
    for i, p in enumerate(keyed):
        dominated = any(all(q[k] >= p[k] for k in range(len(p))) and any(q[k] > p[k] for k in range(len(p)))
                        for j, q in enumerate(keyed) if j != i)
        mask.append(not dominated)
    return mask


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    from scipy.stats import kendalltau

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    tau = kendalltau(x, y).statistic
    return float(tau) if math.isfinite(tau) else None


def collect_report(store: Any, name: str) -> SearchReport:
    """Gather a search's report data from the store (raises :class:`~nas.store.StoreError` for an unknown name)."""
    from nas.search import summarize

    record = store.get_search(name)
    summary = summarize(store, name)
    trials = store.trials_of(name)
    scores = store.scores_of(name)
    known = store.known_hashes(name)
    archs = {h: store.get_architecture(h) for h in known}
    latency = {s.arch_hash: s.value for s in scores if s.name == "latency_ms"}
    t0 = record.created
    rows = []
    for t in trials:
        a = archs.get(t.arch_hash) or store.get_architecture(t.arch_hash)
        values = dict(zip(record.objectives, t.objective_values or ()))
        values.setdefault("params", a.params)
        values.setdefault("flops", a.flops)
        if t.arch_hash in latency:
            values.setdefault("latency", latency[t.arch_hash])
        rows.append({"id": t.id, "hash": t.arch_hash, "status": t.status, "val_acc": t.val_acc,
                     "test_acc": t.test_acc, "params": a.params, "flops": a.flops, "generation": t.generation,
                     "objectives": values, "has_values": t.objective_values is not None,
                     "seconds": None if t.finished is None else (t.finished - t0).total_seconds(),
                     "sim_cost_s": (t.final or {}).get("sim_cost_s"), "epochs": list(t.epochs), "error": t.error,
                     "derivation": a.derivation, "arch": a.arch})
    finished = sorted((r for r in rows if r["seconds"] is not None), key=lambda r: (r["seconds"], r["id"]))
    best, sim, curve = None, 0.0, []
    for i, r in enumerate(finished, start=1):
        if _finite(r["sim_cost_s"]):
            sim += float(r["sim_cost_s"])
        if r["status"] in ("ok", "stopped") and _finite(r["val_acc"]):
            best = r["val_acc"] if best is None else max(best, r["val_acc"])
        if best is not None:
            curve.append((i, float(r["seconds"]), float(best), sim if sim > 0 else None))
    trained_acc = {r["hash"]: r["val_acc"] for r in rows if r["status"] in ("ok", "stopped") and _finite(r["val_acc"])}
    by_scorer: dict[str, dict[str, float]] = {}
    for s in scores:
        if s.name != "latency_ms" and _finite(s.value):
            by_scorer.setdefault(s.name, {})[s.arch_hash] = float(s.value)
    correlations = []
    for scorer in sorted(by_scorer, key=lambda n: (n == "combined", n != "predictor", n)):
        hashes = tuple(h for h in by_scorer[scorer] if h in trained_acc)
        xs = tuple(by_scorer[scorer][h] for h in hashes)
        ys = tuple(float(trained_acc[h]) for h in hashes)
        correlations.append(ScoreCorrelation(scorer, xs, ys, hashes, _kendall(xs, ys)))
    trained_hashes = {r["hash"] for r in rows}
    sampled = {"params": tuple(float(a.params) for a in archs.values()),
               "flops": tuple(float(a.flops) for a in archs.values())}
    trained = {"params": tuple(float(a.params) for h, a in archs.items() if h in trained_hashes),
               "flops": tuple(float(a.flops) for h, a in archs.items() if h in trained_hashes)}
    ranked = store.best(name, max(TOP_CURVES, TOP_PICTURES))
    curves = tuple({"id": t.id, "hash": t.arch_hash, "status": t.status, "val_acc": t.val_acc,
                    "epochs": [e.get("epoch", i + 1) for i, e in enumerate(t.epochs)],
                    "curve": [e.get("val_acc") for e in t.epochs]} for t in ranked[:TOP_CURVES] if t.epochs)
    top = tuple({"rank": k, "id": t.id, "hash": t.arch_hash, "val_acc": t.val_acc, "test_acc": t.test_acc,
                 "params": archs[t.arch_hash].params if t.arch_hash in archs else None,
                 "flops": archs[t.arch_hash].flops if t.arch_hash in archs else None}
                for k, t in enumerate(ranked[:TOP_PICTURES], start=1))
    header = {"space": record.space, "dataset": record.dataset, "strategy": record.config.get("strategy", ""),
              "status": record.status, "budget": summary.budget, "finished": summary.finished, "ok": summary.ok,
              "stopped": summary.stopped, "failed": summary.failed,
              "unfinished": sum(r["status"] in ("queued", "running") for r in rows),
              "sampled": len(known), "objectives": ", ".join(record.objectives),
              "scorers": ", ".join(record.config.get("scorers") or []) or "none",
              "created": record.created.strftime("%Y-%m-%d %H:%M UTC"),
              "best_val_acc": summary.best.val_acc if summary.best else None,
              "best_test_acc": summary.best.test_acc if summary.best else None}
    failed = tuple({"id": r["id"], "hash": r["hash"], "error": r["error"] or "(no message)",
                    "derivation": r["derivation"]} for r in rows if r["status"] == "failed")
    return SearchReport(name, header, tuple(record.objectives), tuple(record.directions), tuple(rows), tuple(curve),
                        tuple(correlations), sampled, trained, curves, failed, top)


# ------------------------------------------------------------------------------------------------ drawing

def _figure_html(fig: Any, div_id: str) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50}, height=380)
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _best_so_far_figures(report: SearchReport) -> list[str]:
    import plotly.graph_objects as go

    if not report.best_so_far:
        return []
    n = [c[0] for c in report.best_so_far]
    secs = [c[1] for c in report.best_so_far]
    best = [c[2] for c in report.best_so_far]
    points = [r for r in report.trials if r["status"] in ("ok", "stopped") and _finite(r["val_acc"])
              and r["seconds"] is not None]
    order = {r["id"]: i for i, r in enumerate(sorted((r for r in report.trials if r["seconds"] is not None),
                                                      key=lambda r: (r["seconds"], r["id"])), start=1)}
    by_trials = go.Figure([
        go.Scatter(x=[order[r["id"]] for r in points], y=[r["val_acc"] for r in points], mode="markers",
                   name="trial", marker={"size": 6, "opacity": 0.5, "color": "#7f7f7f"},
                   text=[f"trial {r['id']} {r['hash'][:12]}" for r in points]),
        go.Scatter(x=n, y=best, mode="lines", line={"shape": "hv", "width": 2.5}, name="best so far")])
    by_trials.update_layout(title="Best val acc so far vs trials finished",
                            xaxis_title="trials finished", yaxis_title="validation accuracy")
    by_time = go.Figure([go.Scatter(x=secs, y=best, mode="lines+markers", line={"shape": "hv"},
                                    name="best so far (wall time)")])
    by_time.update_layout(title="Best val acc so far vs time since the start",
                          xaxis_title="seconds", yaxis_title="validation accuracy")
    figures = [_figure_html(by_trials, "best-vs-trials"), _figure_html(by_time, "best-vs-time")]
    sim = [(c[3], c[2]) for c in report.best_so_far if c[3] is not None]
    if sim:
        by_cost = go.Figure([go.Scatter(x=[s[0] for s in sim], y=[s[1] for s in sim], mode="lines+markers",
                                        line={"shape": "hv"}, name="best so far (simulated cost)")])
        by_cost.update_layout(title="Best val acc so far vs simulated cost (table mode)",
                              xaxis_title="simulated seconds (sum of sim_cost_s)",
                              yaxis_title="validation accuracy")
        figures.append(_figure_html(by_cost, "best-vs-sim-cost"))
    return figures


def _pareto_figures(report: SearchReport) -> list[str]:
    import plotly.graph_objects as go

    others = [(o, d) for o, d in zip(report.objectives[1:], report.directions[1:])]
    if not others:  # a single-objective search: accuracy against size is still the trade-off users look at
        others = [("params", "minimize")]
    figures = []
    rows = [r for r in report.trials if r["status"] in ("ok", "stopped") and _finite(r["val_acc"])
            and all(_finite(r["objectives"].get(o)) for o, _ in others)]
    for k, (objective, direction) in enumerate(others):
        pts = [(r["val_acc"], float(r["objectives"][objective])) for r in rows]
        mask = pareto_mask(pts, ["maximize", direction]) if pts else []
        traces = []
        for status in ("ok", "stopped"):
            sel = [r for r in rows if r["status"] == status]
            traces.append(go.Scatter(
                x=[r["objectives"][objective] for r in sel], y=[r["val_acc"] for r in sel], mode="markers",
                name=f"{status} ({len(sel)})", marker={"color": _STATUS_COLOURS[status], "size": 7, "opacity": 0.7},
                text=[f"trial {r['id']} {r['hash'][:12]}" for r in sel]))
        front = sorted((p for p, m in zip(pts, mask) if m), key=lambda p: p[1])
        traces.append(go.Scatter(x=[p[1] for p in front], y=[p[0] for p in front], mode="lines+markers",
                                 line={"shape": "hv" if direction == "minimize" else "linear", "color": "#2ca02c"},
                                 marker={"size": 11, "symbol": "diamond-open", "color": "#2ca02c"},
                                 name=f"Pareto front ({len(front)})"))
        fig = go.Figure(traces)
        fig.update_layout(title=f"Pareto front: val acc (max) vs {objective} ({direction[:3]}), all trials with "
                                "values", xaxis_title=objective, yaxis_title="validation accuracy")
        if objective in ("params", "flops"):
            fig.update_xaxes(type="log")
        figures.append(_figure_html(fig, f"pareto-{k}"))
    return figures


def _correlation_figures(report: SearchReport) -> list[str]:
    import plotly.graph_objects as go

    figures = []
    for k, c in enumerate(report.correlations):
        tau = "n/a" if c.kendall_tau is None else f"{c.kendall_tau:+.3f}"
        fig = go.Figure([go.Scatter(x=list(c.scores), y=list(c.accuracies), mode="markers", name=c.name,
                                    text=[h[:12] for h in c.hashes], marker={"size": 7, "opacity": 0.75})])
        label = {"predictor": "predictor score", "combined": "combined rank"}.get(c.name, f"proxy {c.name}")
        fig.update_layout(title=f"{label} vs val acc: Kendall tau {tau} (n = {len(c.scores)})",
                          xaxis_title=c.name, yaxis_title="validation accuracy", height=340)
        figures.append(_figure_html(fig, f"score-{k}"))
    return figures


def _size_figures(report: SearchReport) -> list[str]:
    import plotly.graph_objects as go

    figures = []
    for key, title in (("params", "parameters"), ("flops", "FLOPs")):
        sampled = [math.log10(max(v, 1.0)) for v in report.sampled_sizes.get(key, ())]
        trained = [math.log10(max(v, 1.0)) for v in report.trained_sizes.get(key, ())]
        if not sampled:
            continue
        fig = go.Figure([go.Histogram(x=sampled, name=f"sampled ({len(sampled)})", opacity=0.6, nbinsx=30),
                         go.Histogram(x=trained, name=f"trained ({len(trained)})", opacity=0.6, nbinsx=30)])
        fig.update_layout(barmode="overlay", title=f"log10 {title}: stored (sampled) vs trained",
                          xaxis_title=f"log10 {title}", yaxis_title="architectures")
        figures.append(_figure_html(fig, f"sizes-{key}"))
    return figures


def _curve_figure(report: SearchReport) -> list[str]:
    import plotly.graph_objects as go

    if not report.curves:
        return []
    fig = go.Figure([go.Scatter(x=c["epochs"], y=c["curve"], mode="lines+markers",
                                name=f"trial {c['id']} ({c['status']}, {c['val_acc']:.4f})")
                     for c in report.curves])
    fig.update_layout(title=f"Learning curves of the {len(report.curves)} best trials", xaxis_title="epoch",
                      yaxis_title="validation accuracy")
    return [_figure_html(fig, "learning-curves")]


def _acc(v: Any) -> str:
    return "-" if not _finite(v) else f"{v:.4f}"


def _pictures(report: SearchReport, store: Any) -> str:
    from nas.viz.picture import PictureError, render_picture
    from nas.viz.source import from_onnx
    from search_spaces.exceptions import SearchSpaceError

    parts = []
    for t in report.top:
        record = store.get_architecture(t["hash"], with_onnx=True)
        try:
            view = from_onnx(record.onnx, source="store")
            svg = render_picture(view.graph, "svg").decode()
            svg = svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline SVG in HTML
        except (PictureError, SearchSpaceError, ValueError) as err:  # e.g. a space renamed since: no picture
            svg = f"<p class='err'>no picture: {html.escape(str(err))}</p>"
        parts.append(f"<figure class='arch'><figcaption>#{t['rank']}: trial {t['id']}, <code>{t['hash'][:12]}</code>,"
                     f" val acc {_acc(t['val_acc'])}, test acc {_acc(t['test_acc'])}, {t['params']:,} params, "
                     f"{t['flops']:,} FLOPs</figcaption>{svg}"
                     f"<details><summary>derivation</summary><code>{html.escape(record.derivation)}</code>"
                     "</details></figure>")
    return "\n".join(parts) or "<p>No trained architecture yet.</p>"


_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1200px;
       color: #222; padding: 0 16px; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f5f5f5; text-align: left; } code { font-size: 12px; word-break: break-all; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px; }
.grid > div { min-width: 0; overflow: hidden; }  /* a plot takes its cell's width, never its content's */
figure.arch { margin: 16px 0; overflow-x: auto; } figure.arch svg { max-width: 100%; height: auto; }
figcaption { font-weight: 600; margin-bottom: 6px; } .err { color: #b00; } .muted { color: #777; }
"""


def render_report(report: SearchReport, store: Any) -> str:
    """The report as one HTML document (plotly's JavaScript inside; no external resource)."""
    from plotly.offline import get_plotlyjs

    h = report.header
    facts = [("space", h["space"]), ("data", h["dataset"]), ("strategy", h["strategy"]), ("status", h["status"]),
             ("trials", f"{h['finished']} of {h['budget']} finished: {h['ok']} ok, {h['stopped']} stopped, "
                        f"{h['failed']} failed; {h['unfinished']} queued/running"),
             ("architectures stored", str(h["sampled"])), ("objectives", h["objectives"]), ("scorers", h["scorers"]),
             ("best val acc", _acc(h["best_val_acc"])), ("its test acc", _acc(h["best_test_acc"])),
             ("created", h["created"])]
    header = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    sections = [("Best so far", _best_so_far_figures(report), "No trial has a validation accuracy yet."),
                ("Pareto front", _pareto_figures(report), "No trial has objective values yet."),
                ("Scores before training against trained accuracy", _correlation_figures(report),
                 "This search ranked candidates with no scorer (scorers: none)."),
                ("Sampled sizes", _size_figures(report), "No architecture stored."),
                ("Learning curves", _curve_figure(report), "No per-epoch curves (table look-ups have none).")]
    body = [f"<h1>Search <code>{html.escape(report.name)}</code></h1><table>{header}</table>"]
    for title, figures, empty in sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(f"<div class='grid'>{''.join(figures)}</div>" if figures
                    else f"<p class='muted'>{html.escape(empty)}</p>")
    body.append(f"<h2>Failed trials ({len(report.failed)})</h2>")
    if report.failed:
        rows = "".join(f"<tr><td>{f['id']}</td><td><code>{f['hash'][:12]}</code></td><td>{html.escape(f['error'])}"
                       f"</td></tr>" for f in report.failed)
        body.append(f"<table id='failed'><tr><th>trial</th><th>hash</th><th>error</th></tr>{rows}</table>")
    else:
        body.append("<p class='muted'>None.</p>")
    body.append(f"<h2>Top {len(report.top)} architectures</h2>{_pictures(report, store)}")
    data = json.dumps({"search": report.name, "header": report.header}, default=str)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>NAS search {html.escape(report.name)}</title><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            + "\n".join(body)
            + f"<script type='application/json' id='report-data'>{html.escape(data, quote=False)}</script>"
            + "</body></html>")


def write_report(store: Any, name: str, out: str | Path) -> Path:
    """Write the report of search ``name`` to ``out`` (HTML); returns the path."""
    out = Path(out)
    text = render_report(collect_report(store, name), store)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
