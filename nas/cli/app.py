"""The ``nas`` command line: one Typer app, one sub-module per command group.

Errors the user can fix (bad grammar, unknown space, impossible shape, corrupt derivation) print one line
``error: ...`` to stderr and exit with code 2; set ``NAS_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer

from nas.cli import bench as bench_cmd
from nas.cli import predictor as predictor_cmd
from nas.cli import sample as sample_cmd
from nas.cli import search as search_cmd
from nas.cli import show as show_cmd

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Neural architecture search from grammars: sample, build, export and search architectures.")
app.command("spaces")(sample_cmd.spaces)
app.command("sample")(sample_cmd.sample)
app.command("check-grammar")(sample_cmd.check_grammar)
app.command("show")(show_cmd.show)
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(predictor_cmd.app, name="predictor")
app.add_typer(search_cmd.app, name="search")


def _known_errors() -> tuple[type[BaseException], ...]:
    from nas.bench.labelled import BenchmarkFileError
    from nas.export.onnx import OnnxLoadError
    from nas.search.config import ConfigError
    from nas.search.strategies import StrategyError
    from nas.store import StoreError
    from nas.viz.picture import PictureError
    from search_spaces.exceptions import SearchSpaceError

    known: tuple[type[BaseException], ...] = (SearchSpaceError, OnnxLoadError, BenchmarkFileError, FileNotFoundError,
                                              NotADirectoryError, PermissionError, StoreError, ConfigError,
                                              StrategyError, PictureError)
    if "nas.search.tune_runner" in sys.modules:  # only then can the error be one (it imports Ray, slow)
        known += (sys.modules["nas.search.tune_runner"].RayConnectionError,)
    try:
        from nas.data import DatasetError

        known += (DatasetError,)
    except ImportError:
        pass
    return known


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning known errors into one line and exit code 2."""
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            sys.exit(code)  # Typer returns typer.Exit's code (and 130 for Ctrl-C) in non-standalone mode
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except Exception as err:  # noqa: BLE001 - the edge of the program
        import click

        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(2)
        if os.environ.get("NAS_DEBUG") or not isinstance(err, _known_errors()):
            raise
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        detail = "\n".join(str(err).splitlines()[1:])
        print(f"error: {first_line}", file=sys.stderr)
        if detail:
            print(detail, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
