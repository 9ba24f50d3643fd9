"""``nas bench build`` and ``nas bench correlate``: labelled benchmarks and proxy rank correlations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from nas.bench.labelled import BenchRow

app = typer.Typer(no_args_is_help=True, help="Build labelled benchmarks and correlate zero-cost proxies with them.")


@app.command("build")
def build(
    space: Annotated[str, typer.Option(help="search space (see `nas spaces`)")] = "einspace",
    dataset: Annotated[str, typer.Option(help="digits, mnist1d, mnist5k, a .npz file or an image folder")] = "digits",
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="architectures to train")] = 300,
    epochs: Annotated[int, typer.Option(min=1, help="training epochs per architecture")] = 10,
    seed: Annotated[int, typer.Option(help="seed of sampling, splits, initialisation and training")] = 0,
    out: Annotated[Path, typer.Option(help="benchmark file (.jsonl.gz); an existing one is resumed")] = Path(
        "bench.jsonl.gz"),
    config: Annotated[Path | None, typer.Option(help="YAML file with training protocol overrides")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads")] = None,
    max_params: Annotated[int | None, typer.Option(help="parameter budget of sampled bodies")] = None,
    max_elements: Annotated[int | None, typer.Option(help="largest tensor per sample (bounds training time)")] = None,
    max_nodes: Annotated[int | None, typer.Option(help="maximum module nodes")] = None,
    max_depth: Annotated[int | None, typer.Option(help="maximum combinator nesting")] = None,
) -> None:
    """Train sampled architectures with a fixed protocol and store them with their curves and ONNX files."""
    from dataclasses import replace

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.bench import build_benchmark
    from nas.cli._options import space_limits
    from nas.train import TrainConfig

    protocol = TrainConfig.from_yaml(config) if config else TrainConfig()
    if threads is not None:
        protocol = replace(protocol, threads=threads)
    limits = space_limits(space, max_params=max_params, max_elements=max_elements, max_nodes=max_nodes,
                          max_depth=max_depth)
    best = {"acc": 0.0}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("best val {task.fields[best]:.3f}"), console=Console(stderr=True)) as progress:
        task = progress.add_task(f"{space} on {dataset}", total=n, best=0.0)

        def on_row(row: BenchRow) -> None:
            if row.val_acc is not None:
                best["acc"] = max(best["acc"], row.val_acc)
            progress.update(task, advance=1, best=best["acc"])

        bench = build_benchmark(space, dataset, n, out, epochs=epochs, seed=seed, config=protocol, limits=limits,
                                on_row=on_row)
    failed = sum(r.status == "failed" for r in bench.rows)
    typer.echo(f"{out}: {len(bench.rows)} architectures ({failed} failed trainings), best val acc {best['acc']:.4f}")


@app.command("correlate")
def correlate(
    file: Annotated[Path, typer.Argument(help="benchmark file from `nas bench build`")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report as JSON here")] = None,
    md_out: Annotated[Path | None, typer.Option("--md", help="write the table as markdown here")] = None,
    proxies: Annotated[str | None, typer.Option(help="comma-separated proxy names (default: all)")] = None,
    batch_size: Annotated[int, typer.Option(min=4, help="batch the proxies see")] = 64,
    seed: Annotated[int, typer.Option(help="seed of initialisation and batch")] = 0,
    lga_steps: Annotated[int, typer.Option(min=0, help="also report LGA after K steps of the benchmark's optimiser "
                                                      "on training batches other than the measured one (lga@K)")] = 0,
    ntk_method: Annotated[str, typer.Option(help="NTK of ntk_* and lga: batch (TE-NAS, through BatchNorm "
                                                 "statistics), frozen_bn or loop")] = "batch",
    max_rows: Annotated[int | None, typer.Option(min=3, help="only the first N finished architectures (file "
                                                               "order): a cheaper table")] = None,
) -> None:
    """Kendall tau and Spearman rho of every proxy against validation accuracy, beside params and FLOPs."""
    from rich.progress import Progress

    from nas.bench import load_benchmark
    from nas.bench.correlate import correlate as run

    if ntk_method not in ("batch", "frozen_bn", "loop"):
        raise typer.BadParameter(f"unknown NTK method {ntk_method!r}; expected batch, frozen_bn or loop",
                                 param_hint="--ntk-method")
    bench = load_benchmark(file)
    names = [p.strip() for p in proxies.split(",")] if proxies else None
    with Progress(console=Console(stderr=True)) as progress:
        total = len(bench.trained()) if max_rows is None else min(max_rows, len(bench.trained()))
        task = progress.add_task("proxies", total=total)
        report = run(bench, proxies=names, batch_size=batch_size, seed=seed, lga_steps=lga_steps,
                     ntk_method=ntk_method, max_rows=max_rows,
                     progress=lambda done, total: progress.update(task, completed=done))
    table = Table("proxy", "Kendall tau", "Spearman rho", "median s", "valid",
                  title=f"{report['space']} on {report['dataset']}: {report['rows']} architectures")
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    for name, r in sorted(report["proxies"].items(), key=lambda kv: -(kv[1]["kendall_tau"] or -9)):
        table.add_row(name, fmt(r["kendall_tau"]), fmt(r["spearman"]), f"{r['median_seconds']:.4f}",
                      f"{r['valid']}/{report['rows']}")
    Console().print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    if md_out is not None:
        import shlex
        import sys

        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(_markdown(report, bench.header, "nas " + " ".join(shlex.quote(a) for a in sys.argv[1:])))


def _settings_lines(settings: dict | None) -> list[str]:
    """How the proxies were computed: batch, NTK kernel and the training of ``lga@K``."""
    if not settings:
        return []
    kernel = {"batch": "TE-NAS's kernel (batched train-mode forward, gradients through the BatchNorm batch "
                       "statistics, parameters named `*weight*`)",
              "loop": "TE-NAS's kernel by an autograd loop",
              "frozen_bn": "per-sample gradients with BatchNorm frozen at the batch statistics"}
    lines = []
    if settings.get("max_rows") is not None and settings["max_rows"] < settings.get("finished_rows", 0):
        lines.append(f"Only the first {settings['max_rows']} of the {settings['finished_rows']} finished "
                     "architectures (file order, which is sampling order) were scored.")
    lines += [f"Proxies on one batch of {settings['batch_size']} training examples (seed {settings['seed']}); NTK: "
             f"{kernel.get(settings['ntk_method'], settings['ntk_method'])}; `ntk_cond`/`ntk_eig` on the "
             "trace-normalised kernel; `lga` without the classifier's weights (Mok et al.)."]
    lga = settings.get("lga")
    if lga:
        lines.append(f"`lga@{lga['steps']}`: LGA after {lga['steps']} steps of the benchmark's own optimiser "
                     f"({lga['optimizer']}, lr {lga['lr']:g} held at its peak, weight decay {lga['weight_decay']:g}, "
                     f"gradient clip {lga['grad_clip']}, label smoothing {lga['label_smoothing']:g}) on "
                     f"{lga['steps']} batches of {lga['batch_size']} drawn from the "
                     f"{lga['train_examples_outside_measured_batch']} training examples outside the measured batch "
                     "(the same for every architecture), measured on the proxies' batch.")
    return [*lines, ""]


def _markdown(report: dict, header: dict, command: str) -> str:
    """The correlation table as markdown, best Kendall tau first, with the benchmark's protocol."""
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    lines = [f"# Zero-cost proxies on {report['space']} / {report['dataset']}", "",
             f"Command: `{command}`", "",
             f"{report['rows']} trained architectures (seed {header['seed']}, input {header['input_shape']}); "
             f"protocol: `{json.dumps(header['protocol'])}`; sampling limits: `{json.dumps(header.get('limits'))}`.",
             "Correlations are against final validation accuracy; an invalid proxy value (-inf) ranks last. Every "
             "proxy is higher-is-better (`ntk_cond` is -cond).", "", *_settings_lines(report.get("settings")),
             "| proxy | Kendall tau | Spearman rho | median s | valid |", "|---|---:|---:|---:|---:|"]
    for name, r in sorted(report["proxies"].items(), key=lambda kv: -(kv[1]["kendall_tau"] or -9)):
        lines.append(f"| {name} | {fmt(r['kendall_tau'])} | {fmt(r['spearman'])} | {r['median_seconds']:.4f} | "
                     f"{r['valid']}/{report['rows']} |")
    return "\n".join(lines) + "\n"
