"""``nas predictor fit`` and ``nas predictor eval``: train and evaluate the ONNX-Net text predictor."""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from predictors import OnnxNetPredictor

app = typer.Typer(no_args_is_help=True, help="Train and evaluate the ONNX-Net-style accuracy predictor.")

CorpusOpt = Annotated[list[Path], typer.Option("--corpus", "-c", help="corpus (.jsonl.gz from "
                                               "benchmarks/predictor_corpus.py) or labelled benchmark "
                                               "(`nas bench build`) file; repeat for several spaces")]


def _load(paths: list[Path]) -> list[Any]:
    """Every corpus (a labelled benchmark is encoded next to its file once); a file that is neither is one
    :class:`~nas.errors.InputFileError` naming it."""
    import gzip
    import zlib

    from nas.bench.predictor_corpus import FORMAT, corpus_from_benchmark, load_corpus
    from nas.errors import InputFileError, NasError

    corpora = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {path} does not exist")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                header = json.loads(handle.readline(1 << 20))
        except (json.JSONDecodeError, OSError, EOFError, UnicodeDecodeError, zlib.error) as err:
            raise InputFileError(f"{path} is neither a predictor corpus nor a labelled benchmark: "
                                 f"{' '.join(str(err).split())}") from None
        if not isinstance(header, dict):
            raise InputFileError(f"{path} is neither a predictor corpus nor a labelled benchmark: its first line is "
                                 f"not a JSON object")
        try:
            if header.get("format") != FORMAT:  # a labelled benchmark: encode it next to the file once
                cached = path.with_name(path.name.replace(".jsonl.gz", "") + ".corpus.jsonl.gz")
                if not cached.exists() or cached.stat().st_mtime < path.stat().st_mtime:
                    corpus_from_benchmark(path, cached)
                try:
                    corpora.append(load_corpus(cached))
                except ValueError:  # written by an older encoding: encode again
                    corpus_from_benchmark(path, cached)
                    corpora.append(load_corpus(cached))
                continue
            corpora.append(load_corpus(path))
        except NasError:
            raise
        except (KeyError, TypeError, ValueError, EOFError, zlib.error, UnicodeDecodeError) as err:
            raise InputFileError(f"{path} is not a valid predictor corpus or labelled benchmark: "
                                 f"{type(err).__name__}: {' '.join(str(err).split())[:200]}") from None
    return corpora


def _make(encoder: str, options: dict[str, Any]) -> Callable[[], OnnxNetPredictor]:
    from predictors import OnnxNetPredictor

    return lambda: OnnxNetPredictor(encoder={"name": encoder}, **options)


def _fail(message: str) -> None:
    """One ``error:`` line and exit code 2 (the CLI's convention for errors the user can fix)."""
    typer.echo(f"error: {message.splitlines()[0] if message else 'failed'}", err=True)
    raise typer.Exit(2)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@app.command("fit")
def fit(
    corpus: Annotated[list[Path] | None, typer.Option(
        "--corpus", "-c", help="corpus (.jsonl.gz from benchmarks/predictor_corpus.py) or labelled benchmark "
        "(`nas bench build`) file; repeat for several spaces")] = None,
    onnx_dir: Annotated[Path | None, typer.Option(
        "--onnx-dir", help="a folder of ONNX files (ONNX-Bench, your model zoo); needs --labels")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="CSV with columns file (relative to --onnx-dir), accuracy and optionally group")] = None,
    out: Annotated[Path, typer.Option(help="where to save (writes OUT.json and OUT.safetensors)")] = Path(
        "predictor"),
    encoder: Annotated[str, typer.Option(help="text encoder: hash, minilm or transformer")] = "hash",
    base: Annotated[str | None, typer.Option(help="fine-tune this predictor ('default' = the shipped one)")] = None,
    loss: Annotated[str, typer.Option(help="ranking, mse or listwise")] = "ranking",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train a predictor on labelled corpora and/or a folder of ONNX files (one ranking group per space, or per
    CSV ``group``) and save it; its JSON records what it learned from (``nas predictor info``)."""
    from nas.bench.onnx_folder import OnnxFolderError, read_onnx_folder
    from predictors import OnnxNetPredictor, OnnxTextError, PredictorError

    if not corpus and onnx_dir is None:
        _fail("nothing to learn from: give --corpus FILE and/or --onnx-dir DIR --labels FILE.csv")
    if (onnx_dir is None) != (labels is None):
        _fail("--onnx-dir and --labels go together")
    try:
        graphs: list[Any] = []
        acc: list[float] = []
        groups: list[str] = []
        sources: list[dict[str, Any]] = []
        if corpus:
            for path, c in zip(corpus, _load(corpus)):
                graphs += [r.graph for r in c.rows]
                acc += [r.acc for r in c.rows]
                groups += [c.group] * len(c.rows)
                sources.append({"group": c.group, "rows": len(c.rows), "file": str(path), "sha256": _sha256(path)})
        if base is None:
            options: dict[str, Any] = {} if encoder == "hash" else {"encoder": {"name": encoder}}  # hash: the default's
            predictor = OnnxNetPredictor(loss=loss, seed=seed, **options)
        else:
            predictor = OnnxNetPredictor.default() if base == "default" else OnnxNetPredictor.load(base)
        if onnx_dir is not None:
            assert labels is not None, "checked with --onnx-dir above"
            folder = read_onnx_folder(onnx_dir, labels)
            encoded = predictor.encode(folder.files)
            graphs += encoded
            acc += folder.accuracies
            groups += folder.groups
            for group, rows in sorted(Counter(folder.groups).items()):
                sources.append({"group": group, "rows": rows, "onnx_dir": str(onnx_dir), "labels": str(labels),
                                "sha256": _sha256(labels)})
        predictor.provenance = {"command": "nas " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                                "sources": predictor.provenance.get("sources", []) + sources}
        predictor.fit(graphs, acc, groups=groups)
        json_path, weights_path = predictor.save(out)
    except (PredictorError, OnnxTextError, OnnxFolderError, ValueError) as err:
        _fail(str(err))
    summary = predictor.summary
    assert summary is not None, "fit() sets the summary"
    typer.echo(f"trained on {summary.examples} architectures {summary.groups} in {summary.seconds:.1f} s; "
               f"validation tau per head {[round(t, 3) for t in summary.val_tau]}")
    typer.echo(f"saved {json_path} and {weights_path} ({weights_path.stat().st_size / 1e6:.2f} MB)")


@app.command("info")
def info(
    path: Annotated[Path | None, typer.Argument(help="predictor file (P, P.json or P.safetensors); "
                                                   "default: the shipped default")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the description as JSON")] = False,
) -> None:
    """What a predictor is and exactly which ranking groups (space/dataset/protocol) it learned from, so a
    benchmark can show it never saw its target."""
    from predictors import PredictorError
    from predictors.onnx_net.files import describe
    from predictors.onnx_net.predictor import DEFAULT_DIR

    try:
        d = describe(path if path is not None else DEFAULT_DIR / "default")
    except PredictorError as err:
        _fail(str(err))
    if as_json:
        typer.echo(json.dumps(d, indent=1))
        return
    typer.echo(f"predictor {d['path']} (format version {d['version']}, {d['size_bytes'] / 1e6:.2f} MB)")
    typer.echo(f"encoder {d['encoder']}, input {d['variant']}, {d['input_width']} features, "
               f"ensemble of {d['ensemble']}" + (f", extra inputs {d['extra_names']}" if d["extra_names"] else ""))
    typer.echo(f"trained on {d['examples']} labelled rows in {d['fits']} fit(s):")
    for group, rows in d["trained_on"].items():
        typer.echo(f"  {group}: {rows}")
    for source in d["provenance"].get("sources", []):
        where = source.get("file") or f"{source.get('onnx_dir')} labelled by {source.get('labels')}"
        typer.echo(f"  source {source.get('group')}: {where} (sha256 {str(source.get('sha256', '?'))[:16]})")


@app.command("eval")
def evaluate(
    corpus: CorpusOpt,
    protocol: Annotated[str, typer.Option(help="comma-separated: random, few-shot, zero-shot")] =
    "random,few-shot,zero-shot",
    seeds: Annotated[int, typer.Option(min=1, help="seeds per cell")] = 5,
    sizes: Annotated[str, typer.Option(help="few-shot label counts")] = "10,50,100,500,1000",
    few_shot_spaces: Annotated[str | None, typer.Option(help="only these spaces get few-shot curves")] = None,
    encoder: Annotated[str, typer.Option(help="text encoder: hash, minilm or transformer")] = "hash",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the scores as JSON")] = None,
    md_out: Annotated[Path | None, typer.Option("--md", help="write the tables as markdown")] = None,
) -> None:
    """Kendall tau / Spearman rho per space: random split, few-shot curves, leave-one-space-out zero-shot, beside
    params, FLOPs and a GRAF-style random forest on the same rows."""
    from nas.bench.labelled import BenchmarkFileError
    from nas.bench.predictor_eval import evaluate as run

    try:
        corpora = _load(corpus)
    except (ValueError, BenchmarkFileError) as err:
        _fail(str(err))
    console = Console(stderr=True)
    scores = run(corpora, _make(encoder, {}), seeds=seeds, sizes=[int(s) for s in sizes.split(",")],
                 protocols=[p.strip() for p in protocol.split(",")],
                 few_shot_spaces=few_shot_spaces.split(",") if few_shot_spaces else None,
                 log=lambda line: console.print(line, markup=False))
    table = Table("protocol", "space", "n", "method", "Kendall tau", "Spearman rho", "seeds")
    for s in scores:
        table.add_row(s.protocol, s.space, str(s.n_train), s.method, f"{s.kendall_tau:+.3f} ± {s.tau_std:.3f}",
                      f"{s.spearman:+.3f}", str(s.seeds))
    Console().print(table)
    command = "nas " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"command": command, "encoder": encoder,
                                        "corpora": {c.group: len(c.rows) for c in corpora},
                                        "scores": [asdict(s) for s in scores]}, indent=1) + "\n")
    if md_out is not None:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(markdown(scores, corpora, command, encoder))


def markdown(scores: list[Any], corpora: list[Any], command: str, encoder: str) -> str:
    """The evaluation as markdown tables (one per protocol; methods side by side)."""
    lines = [f"# ONNX-Net predictor ({encoder} encoder) vs baselines", "", f"Command: `{command}`", "",
             "Corpora: " + ", ".join(f"{c.group} ({len(c.rows)} architectures)" for c in corpora) + ".",
             "Cells: Kendall tau (Spearman rho) on the held-out rows, mean over seeds.", ""]
    for protocol in ("random", "few-shot", "zero-shot"):
        rows = [s for s in scores if s.protocol == protocol]
        if not rows:
            continue
        methods = list(dict.fromkeys(s.method for s in rows))
        lines += [f"## {protocol}", "", "| space | n train | " + " | ".join(methods) + " |",
                  "|---|---:|" + "---:|" * len(methods)]
        for key in dict.fromkeys((s.space, s.n_train) for s in rows):
            cells = []
            for m in methods:
                hit = next((s for s in rows if (s.space, s.n_train) == key and s.method == m), None)
                cells.append("" if hit is None else f"{hit.kendall_tau:.3f} ({hit.spearman:.3f})")
            lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
