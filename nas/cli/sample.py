"""``nas spaces``, ``nas sample`` and ``nas check-grammar``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from nas.util.atomic import check_output_dir
from nas.util.inputs import read_text_file
from search_spaces.exceptions import InputShapeError

MAX_NUM_CLASSES = 100_000
"""The largest classifier head ``nas sample`` builds (ImageNet-21k has 21,841 classes); the head is outside every
sampling budget, so without a bound ``--num-classes 100000000`` would write gigabytes per candidate."""


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise InputShapeError(f"input shape must be comma-separated integers like 3,32,32, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise InputShapeError(f"input shape must be positive integers like 3,32,32, got {text!r}")
    return shape


def spaces() -> None:
    """List the built-in search spaces with the size of each (log10 of its number of derivations)."""
    import math

    from search_spaces.spaces import get_space, list_spaces

    table = Table("space", "inputs", "log10 size", "description")
    for spec in list_spaces():
        count = get_space(spec.name, spec.example_input).derivation_count()
        size = "unbounded" if count is None else f"{math.log10(count):.1f}"
        if count is not None and count < 10**7:
            size += f" ({count:,})"
        table.add_row(spec.name, "/".join({"image": "C,H,W", "signal": "C,L"}[m] for m in spec.input_modes),
                      size, spec.description)
    Console(width=160).print(table)


def check_grammar(path: Annotated[Path, typer.Argument(help="grammar file to validate")]) -> None:
    """Parse and validate a grammar file; print its rules and probabilities."""
    from search_spaces._format.load import load_grammar

    grammar = load_grammar(path)
    typer.echo(f"{path}: ok (start {grammar.start!r})")
    for rule in grammar.rules:
        typer.echo(f"  {rule.symbol} [{rule.category}]: {len(rule.alternatives)} alternatives")


def sample(
    space: Annotated[str, typer.Option(help="search space name (see `nas spaces`)")] = "einspace",
    input_shape: Annotated[str, typer.Option(help="input shape without batch: C,H,W or C,L")] = "3,32,32",
    num_classes: Annotated[int, typer.Option(min=1, max=MAX_NUM_CLASSES, help="classes of the classifier head")] = 10,
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="candidates to sample")] = 10,
    seed: Annotated[int, typer.Option(help="seed; candidate i uses seed (SEED, i)")] = 0,
    out: Annotated[Path, typer.Option(help="output folder for ONNX files and summary.jsonl")] = Path("candidates"),
    arch: Annotated[list[str] | None, typer.Option(help="build this architecture instead (repeatable)")] = None,
    arch_file: Annotated[Path | None, typer.Option(help="file with one architecture string per line")] = None,
    enumerate_all: Annotated[bool, typer.Option("--enumerate", help="build every architecture of a finite "
                                                "benchmark space (nb201, nb-macro)")] = False,
    grammar: Annotated[Path | None, typer.Option(help="use this grammar file instead of the space's")] = None,
    max_params: Annotated[int | None, typer.Option(help="parameter budget of the body")] = None,
    max_flops: Annotated[int | None, typer.Option(help="FLOPs budget of the body")] = None,
    max_depth: Annotated[int | None, typer.Option(help="maximum combinator nesting")] = None,
    max_nodes: Annotated[int | None, typer.Option(help="maximum module nodes")] = None,
    force: Annotated[bool, typer.Option("--force", help="write into a folder that already has a summary.jsonl "
                                        "(it is replaced)")] = False,
) -> None:
    """Sample candidates (or build named ones), writing one ONNX file each and DIR/summary.jsonl.

    Every input is checked before anything is written: the architecture strings parse, ``--out`` is a writable
    folder without an earlier ``summary.jsonl`` (unless ``--force``). Each ONNX file is written atomically and
    each summary row is flushed as it is written, so an interrupted run (Ctrl-C, SIGTERM) keeps every row of the
    candidates it wrote.
    """

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nas.candidate import build_candidate
    from nas.cli._options import space_limits
    from nas.export.onnx import save_onnx
    from search_spaces.spaces import get_space

    shape = _parse_shape(input_shape)
    limits = space_limits(space, max_params=max_params, max_flops=max_flops, max_depth=max_depth,
                          max_nodes=max_nodes)
    sp = get_space(space, shape, limits=limits, grammar_path=str(grammar) if grammar else None)
    named = list(arch or [])
    if arch_file is not None:
        text = read_text_file(arch_file, what="--arch-file")
        named += [line.strip() for line in text.splitlines() if line.strip()]
    if enumerate_all:
        named += list(sp.enumerate())
    derivations = [sp.from_arch(a) for a in named]  # parse all first: a bad string fails before any output
    total = len(derivations) if named else n
    summary_path = out / "summary.jsonl"

    def used(folder: Path) -> str | None:
        if (folder / "summary.jsonl").exists() and not force:
            return (f"--out {folder} already holds a summary.jsonl from an earlier run: choose another folder, "
                    "or pass --force to replace it")
        return None

    check_output_dir(out, what="--out", refuse=used)
    with summary_path.open("w", buffering=1) as summary, Progress(TextColumn("{task.description}"), BarColumn(),
                                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                                     console=Console(stderr=True)) as progress:
        task = progress.add_task(f"{space} {','.join(map(str, shape))}", total=total)
        for i in range(total):
            derivation = derivations[i] if named else sp.sample(__import__("random").Random(f"{seed}:{i}"))
            cand = build_candidate(sp, derivation, num_classes)
            file = f"{i:05d}_{cand.hash[:12]}.onnx"
            save_onnx(cand.onnx_model, out / file)
            row = {"file": file, "index": i, "seed": seed, **cand.summary()}
            summary.write(json.dumps(row) + "\n")
            progress.advance(task)
    typer.echo(f"wrote {total} candidates to {out}/ (summary: {summary_path})")
