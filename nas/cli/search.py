"""``nas search``: run, resume, list, show, export, plot and browse architecture searches.

Examples::

    nas search run                                   # the default search: einspace on digits, sqlite:///nas.db
    nas search run --name s2 --budget 40 --strategy guided --objectives val_acc,latency
    nas search run --name big --config configs/search_default.yaml --address ray://head:10001
    nas search run --space nb-macro --evaluator table:nas-bench-macro_cifar10.json    # benchmark mode
    nas search resume s2 --budget 60                 # after a crash (even kill -9), or to train more
    nas search ls                                    # ls, show, export, plot, report: read-only
    nas search show default
    nas search export default --top 5 --out best/
    nas search plot default --out plots/
    nas search report default --out report.html      # one self-contained HTML file
    nas search dashboard                             # optuna-dashboard on http://127.0.0.1:8080
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nas.util.atomic import check_output_dir
from nas.util.secrets import mask_url, shell_command

if TYPE_CHECKING:
    from nas.search import SearchProgress, SearchSummary

app = typer.Typer(no_args_is_help=True, help="Search architectures: propose, rank, train with Ray Tune, store in SQL.")

DEFAULT_DB = "sqlite:///nas.db"
DbOpt = Annotated[str, typer.Option("--db", help="the store's SQLAlchemy URL (SQLite file or PostgreSQL)")]
NameArg = Annotated[str, typer.Argument(help="the search's name (see `nas search ls`)")]
DbRetryOpt = Annotated[float, typer.Option("--db-retry-s", min=0, help="seconds a lost database connection is "
                                           "retried during the search before it stops interrupted (resumable)")]
DB_RETRY_S = 120.0
AllowForeignOpt = Annotated[bool, typer.Option("--allow-foreign-db", help="let the store's tables join a SQLite "
                                               "file that holds another application's tables only (theirs are "
                                               "left untouched)")]
_SPARKS = "▁▂▃▄▅▆▇█"


def _quiet_libraries() -> None:
    """Ray Tune's and Optuna's INFO lines would tear the progress bar apart: warnings only."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


@app.command("run")
def run(
    name: Annotated[str, typer.Option(help="the search's name (and its Optuna study's)")] = "default",
    db: DbOpt = DEFAULT_DB,
    budget: Annotated[int | None, typer.Option(min=1, help="candidates to train")] = None,
    config: Annotated[Path | None, typer.Option(help="search config YAML (see configs/search_default.yaml)")] = None,
    space: Annotated[str | None, typer.Option(help="search space (see `nas spaces`)")] = None,
    dataset: Annotated[str | None, typer.Option(help="digits, mnist1d, mnist5k, a .npz file or a folder")] = None,
    strategy: Annotated[str | None, typer.Option(help="random, evolution, guided, adaptive, optuna or "
                                                     "surrogate")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the strategy, splits, proxies and training")] = None,
    objectives: Annotated[str | None, typer.Option(help="val_acc first, then params, flops, latency; e.g. "
                                                           "val_acc,params")] = None,
    scorers: Annotated[str | None, typer.Option(help="pre-training ranking: predictor and/or proxies, e.g. "
                                                        "predictor,zen ('' = none)")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="candidates trained per round")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="training epochs per candidate (ASHA may stop "
                                                              "earlier)")] = None,
    address: Annotated[str | None, typer.Option(help="an existing Ray cluster (host:port, ray://host:port, "
                                                        "auto); default: a local Ray")] = None,
    cpus_per_trial: Annotated[float | None, typer.Option(help="CPUs per trial (torch threads)")] = None,
    gpus_per_trial: Annotated[float | None, typer.Option(help="GPUs per trial (fractions share a GPU)")] = None,
    evaluator: Annotated[str | None, typer.Option(help="train (Ray Tune, default) or table:PATH (benchmark mode: "
                                                          "look candidates up in a table file, no training)")] = None,
    predictor: Annotated[Path | None, typer.Option(help="an ONNX-Net predictor file (`nas predictor fit`) for "
                                                           "the 'predictor' scorer")] = None,
    db_retry_s: DbRetryOpt = DB_RETRY_S,
    allow_foreign_db: AllowForeignOpt = False,
    job_id: Annotated[str | None, typer.Option(hidden=True, help="the Ray job running this search "
                                                                    "(set by `nas search submit`)")] = None,
    job_address: Annotated[str | None, typer.Option(hidden=True, help="its job server")] = None,
) -> None:
    """Run a new search: propose candidates, rank them with the predictor/proxies, train the best on Ray Tune
    (or, with --evaluator table:PATH, look them up in a tabular benchmark)."""
    from nas.search import SearchConfig, run_search

    data: dict[str, Any] = SearchConfig.from_yaml(config).to_dict() if config else {}
    overrides = {"space": space, "dataset": dataset, "strategy": strategy, "seed": seed, "budget": budget,
                 "batch": batch, "objectives": _split(objectives), "scorers": _split(scorers), "evaluator": evaluator,
                "predictor_path": None if predictor is None else str(predictor)}
    data.update({k: v for k, v in overrides.items() if v is not None})
    tune = dict(data.get("tune") or {})
    if cpus_per_trial is not None:
        tune["cpus_per_trial"] = cpus_per_trial
    if gpus_per_trial is not None:
        tune["gpus_per_trial"] = gpus_per_trial
    if tune:
        data["tune"] = tune
    if epochs is not None:
        data["train"] = {**(data.get("train") or {}), "epochs": epochs}
    search_config = SearchConfig.from_dict(data)
    _quiet_libraries()
    with _ProgressBar(name, search_config.budget, table_mode=search_config.table_mode) as bar:
        summary = run_search(search_config, name=name, db=db, address=address, progress=bar.update,
                             db_retry_s=db_retry_s, job=(job_id, job_address or "") if job_id else None,
                             allow_foreign_db=allow_foreign_db)
    _print_summary(summary, db)


@app.command("resume")
def resume(
    name: NameArg,
    db: DbOpt = DEFAULT_DB,
    budget: Annotated[int | None, typer.Option(min=1, help="a new budget (to train more); default: the "
                                                              "search's")] = None,
    address: Annotated[str | None, typer.Option(help="an existing Ray cluster; default: a local Ray")] = None,
    cpus_per_trial: Annotated[float | None, typer.Option(help="CPUs per trial (overrides the stored "
                                                                 "setting)")] = None,
    gpus_per_trial: Annotated[float | None, typer.Option(help="GPUs per trial (overrides the stored "
                                                                 "setting)")] = None,
    db_retry_s: DbRetryOpt = DB_RETRY_S,
) -> None:
    """Continue a search: repair it after a crash (even kill -9), re-run unfinished trials, go on to the budget.
    --cpus-per-trial/--gpus-per-trial repair a stored resource request that the cluster can never meet."""
    from nas.search import resume_search

    tune = {k: v for k, v in (("cpus_per_trial", cpus_per_trial), ("gpus_per_trial", gpus_per_trial))
            if v is not None}
    _quiet_libraries()
    with _ProgressBar(name, budget or 0, table_mode=_is_table_search(name, db)) as bar:
        summary = resume_search(name, db=db, address=address, budget=budget, progress=bar.update, tune=tune,
                                db_retry_s=db_retry_s)
    _print_summary(summary, db)


@app.command("ls")
def ls(db: DbOpt = DEFAULT_DB,
       as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False) -> None:
    """List the searches of a store."""
    from nas.store import Store, TrialStatus

    rows = []
    with Store(db, read_only=True) as store:
        for s in store.list_searches():
            trials = store.trials_of(s.name)
            best = store.best(s.name, 1)
            rows.append({"name": s.name, "space": s.space, "dataset": s.dataset,
                         "strategy": s.config.get("strategy", ""), "status": s.status,
                         "ok": sum(t.status == TrialStatus.OK for t in trials),
                         "stopped": sum(t.status == TrialStatus.STOPPED for t in trials),
                         "failed": sum(t.status == TrialStatus.FAILED for t in trials),
                         "unfinished": sum(t.status in TrialStatus.unfinished() for t in trials),
                         "budget": s.budget if s.budget is not None else s.config.get("budget"),
                         "best_val_acc": best[0].val_acc if best else None,
                         "best_test_acc": best[0].test_acc if best else None,
                         "created": s.created.strftime("%Y-%m-%d %H:%M")})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no searches in {db} (start one with `nas search run --db {db}`)")
        return
    table = Table("name", "space", "dataset", "strategy", "status", "ok", "stopped", "failed", "best val acc",
                  "its test acc", "created")
    for r in rows:
        table.add_row(r["name"], r["space"], r["dataset"], r["strategy"], r["status"], str(r["ok"]),
                      str(r["stopped"]), str(r["failed"]), _acc(r["best_val_acc"]), _acc(r["best_test_acc"]),
                      r["created"])
    Console(width=160).print(table)


@app.command("show")
def show(
    name: NameArg,
    db: DbOpt = DEFAULT_DB,
    top: Annotated[int, typer.Option(min=1, help="best architectures to list")] = 5,
) -> None:
    """The best architectures of a search, its best-so-far curve and (multi-objective) its Pareto front."""
    from nas.search import summarize
    from nas.store import Store

    console = Console(width=160)
    with Store(db, read_only=True) as store:
        summary = summarize(store, name)
        record = store.get_search(name)
        best = store.best(name, top)
        archs = {t.arch_hash: store.get_architecture(t.arch_hash) for t in best + list(summary.pareto)}
        curve = store.curve(name)
        fallback = [t.id for t in store.trials_of(name) if t.gpu_fallback]
    console.print(f"search [bold]{name}[/bold]: {record.space} on {record.dataset}, "
                  f"{record.config.get('strategy', '?')}, status {summary.status}; {summary.finished}/{summary.budget} "
                  f"trials finished ({summary.ok} ok, {summary.stopped} stopped, {summary.failed} failed); "
                  f"objectives {', '.join(record.objectives)}")
    if record.job_id:
        console.print(f"ray job {record.job_id} at {record.job_address}")
    if fallback:
        shown = ", ".join(map(str, fallback[:20])) + (", ..." if len(fallback) > 20 else "")
        console.print(f"[bold yellow]warning[/bold yellow]: {len(fallback)} trial(s) asked for a GPU but trained on "
                      f"the CPU (no CUDA on their node): {shown}")
    table = Table("rank", "trial", "hash", "status", "val acc", "test acc", "params", "FLOPs", "epochs", "device",
                  "derivation", title="best by validation accuracy")
    for rank, t in enumerate(best, start=1):
        a = archs[t.arch_hash]
        device = str((t.resources or {}).get("device") or "?") + (" (GPU asked)" if t.gpu_fallback else "")
        table.add_row(str(rank), str(t.id), a.hash[:12], t.status, _acc(t.val_acc), _acc(t.test_acc),
                      f"{a.params:,}", f"{a.flops:,}", str(len(t.epochs)), device, _short(a.derivation, 60))
    console.print(table)
    if curve:
        console.print(f"best so far over {len(curve)} trained candidates: {_sparkline(curve)}  "
                      f"{curve[0]:.4f} -> {curve[-1]:.4f}")
        marks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1})
        console.print("  " + "   ".join(f"#{i + 1}: {curve[i]:.4f}" for i in marks))
    if len(record.objectives) > 1 and summary.pareto:
        front = Table("trial", "hash", *record.objectives, "test acc", title="Pareto front")
        for t in summary.pareto:
            values = [f"{v:.4f}" if o in ("val_acc", "latency") else f"{v:,.0f}"
                      for o, v in zip(record.objectives, t.objective_values or ())]
            front.add_row(str(t.id), t.arch_hash[:12], *values, _acc(t.test_acc))
        console.print(front)


@app.command("export")
def export(
    name: NameArg,
    db: DbOpt = DEFAULT_DB,
    top: Annotated[int, typer.Option(min=1, help="how many of the best to export")] = 5,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("search_export"),
) -> None:
    """Write the best K architectures: <rank>_<hash>.onnx, <rank>_<hash>.json (derivation, metrics) and
    summary.json."""
    from nas.search import export_top
    from nas.store import Store

    check_output_dir(out, what="--out")
    with Store(db, read_only=True) as store:
        files = export_top(store, name, top, out)
    n = sum(f.suffix == ".onnx" for f in files)
    typer.echo(f"{out}: {n} architectures (ONNX + JSON) and summary.json")


@app.command("plot")
def plot(
    name: NameArg,
    db: DbOpt = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="output folder for the PNG files")] = Path("search_plots"),
) -> None:
    """Static plots (PNG, matplotlib): best-so-far curve, val acc vs params with the Pareto front, learning
    curves of the top 5."""
    from dashboards.plots import plot_search
    from nas.store import Store

    check_output_dir(out, what="--out")
    with Store(db, read_only=True) as store:
        files = plot_search(store, name, out)
    for f in files:
        typer.echo(str(f))


@app.command("report")
def report(
    name: NameArg,
    db: DbOpt = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="the HTML file to write (self-contained: opens without network)")] = Path(
        "report.html"),
) -> None:
    """One self-contained HTML report: best so far, Pareto fronts, scores vs accuracy (Kendall tau), sizes,
    learning curves, failed trials and pictures of the top architectures."""
    from nas.store import Store
    from nas.viz.report import write_report

    with Store(db, read_only=True) as store:
        path = write_report(store, name, out)
    typer.echo(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("dashboard")
def dashboard(
    db: DbOpt = DEFAULT_DB,
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    allow_foreign_db: AllowForeignOpt = False,
) -> None:
    """Start optuna-dashboard on the store (every search is a study; ONNX files are trial artifacts)."""
    from nas.cli.dashboard import check_port_free, serve_dashboard
    from nas.store import Store

    check_port_free(host, port)  # before the store is opened (or created)
    with Store(db, allow_foreign=allow_foreign_db) as store:
        url, artifact_dir, shown = store.url, store.artifact_dir, store.display_url
    raise typer.Exit(serve_dashboard(url, artifact_dir, host=host, port=port, display_url=shown))


# ------------------------------------------------------------------------------------------------ helpers


def _is_table_search(name: str, db: str) -> bool:
    """Whether the stored search ``name`` is a table search (False when it cannot be read: resume says why)."""
    from nas.search import SearchConfig
    from nas.store import Store

    try:
        with Store(db) as store:
            return SearchConfig.from_dict(store.get_search(name).config).table_mode
    except Exception:  # noqa: BLE001 - resume_search reports the real problem
        return False


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _sparkline(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        return _SPARKS[-1] * len(values)
    return "".join(_SPARKS[min(len(_SPARKS) - 1, int((v - lo) / (hi - lo) * (len(_SPARKS) - 1) + 0.5))]
                   for v in values)


class _ProgressBar:
    """A rich progress bar on stderr: trials finished of the budget, elapsed time, best val acc so far, trials
    running / queued / failed and, for a table search (``table_mode``), evaluations per second."""

    def __init__(self, name: str, budget: int, *, table_mode: bool = False) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("best val acc {task.fields[best]}"),
                                 TextColumn("{task.fields[counts]}"),
                                 TextColumn("[dim]{task.fields[note]}"), console=Console(stderr=True),
                                 transient=False)
        self.task = self.progress.add_task(f"search {name}", total=budget or None, best="-", counts="",
                                           note="starting" if table_mode else "starting Ray")
        self.started = False
        self.table_mode = table_mode
        self.rate = _EvalRate()

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()

    def update(self, event: SearchProgress) -> None:
        if not self.started:  # on the first event: errors before the search starts print without a bar
            self.progress.start()
            self.started = True
        best = "-" if event.best_val_acc is None else f"{event.best_val_acc:.4f}"
        note = event.message if event.event in ("round", "start", "trial") else None
        fields: dict[str, Any] = {"best": best, "counts": _counts_text(event, self.rate.update(event.finished)
                                                                       if self.table_mode else None)}
        if note is not None:
            fields["note"] = _short(note, 60)
        self.progress.update(self.task, total=event.budget, completed=event.finished, **fields)
        if event.event == "warning":
            self.progress.console.print(f"[yellow]warning:[/yellow] {event.message}")


class _EvalRate:
    """Evaluations per second since the first report of this run (a resumed search's earlier trials excluded)."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None

    def update(self, finished: int) -> float | None:
        import time

        now = time.monotonic()
        if self.first is None:
            self.first = (now, finished)
            return None
        seconds, done = now - self.first[0], finished - self.first[1]
        return done / seconds if seconds > 0 and done > 0 else None


def _counts_text(event: SearchProgress, rate: float | None) -> str:
    """``2 running · 6 queued · 1 failed`` (and ``12.3 evals/s`` when given), for the progress bar."""
    parts = [f"{event.running} running", f"{event.queued} queued",
             f"[red]{event.failed} failed[/red]" if event.failed else "0 failed"]
    if rate is not None:
        parts.append(f"{rate:.1f} evals/s")
    return " · ".join(parts)


def _print_summary(summary: SearchSummary, db: str) -> None:
    minutes, seconds = divmod(round(summary.seconds), 60)
    typer.echo(f"search {summary.name!r} {summary.status}: {summary.finished}/{summary.budget} trials "
               f"({summary.ok} ok, {summary.stopped} stopped by ASHA, {summary.failed} failed) in "
               f"{minutes}m{seconds:02d}s")
    best, arch = summary.best, summary.best_architecture
    if best is None or arch is None:
        typer.echo("no candidate was trained successfully")
    else:
        typer.echo(f"best architecture (by validation accuracy): trial {best.id}, hash {arch.hash}")
        typer.echo(f"  derivation: {arch.derivation}")
        typer.echo(f"  val acc {_acc(best.val_acc)}, test acc {_acc(best.test_acc)}, params {arch.params:,}, "
                   f"FLOPs {arch.flops:,}")
        if summary.best_onnx is not None:
            typer.echo(f"  ONNX: {summary.best_onnx}")
    db_flag = [] if db == DEFAULT_DB else ["--db", mask_url(db)]  # hints never show a password; names are quoted
    typer.echo("dashboard:")
    typer.echo(f"  {shell_command('nas', 'search', 'dashboard', db_flag)}")
    typer.echo(f"  {shell_command([mask_url(w) if '://' in w else w for w in summary.dashboard_command])}")
    typer.echo(f"more: {shell_command('nas', 'search', 'show', summary.name, db_flag)}; "
               f"{shell_command('nas', 'search', 'export', summary.name, db_flag, '--top', '5')} --out DIR")


from nas.cli import search_jobs  # noqa: E402,F401 - registers `submit`, `logs` and `stop` on this app
