"""The ``nas`` command line: one Typer app, one sub-module per command group.

Errors the user can fix (bad grammar, unknown space, impossible shape, corrupt derivation, a usage error such as an
unknown option or a value out of range, an unreadable input or unwritable output) print one line ``error: ...`` to
stderr and exit with code 2; set ``NAS_DEBUG=1`` to see the traceback instead. Errors are mapped here, once: every
error of :mod:`nas` derives from :class:`nas.errors.NasError`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer

from nas.cli import bench as bench_cmd
from nas.cli import predictor as predictor_cmd
from nas.cli import sample as sample_cmd
from nas.cli import search as search_cmd
from nas.cli import show as show_cmd
from nas.cli import store as store_cmd
from nas.cli.environment import set_ray_defaults

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Neural architecture search from grammars: sample, build, export and search architectures.")
app.command("spaces")(sample_cmd.spaces)
app.command("sample")(sample_cmd.sample)
app.command("check-grammar")(sample_cmd.check_grammar)
app.command("show")(show_cmd.show)
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(predictor_cmd.app, name="predictor")
app.add_typer(search_cmd.app, name="search")
app.add_typer(store_cmd.app, name="store")


def _known_errors() -> tuple[type[BaseException], ...]:
    """The error roots a user can cause: ours, the two layers' that cannot import ours, and I/O errors."""
    from nas.errors import NasError
    from predictors import PredictorError
    from predictors.onnx_text import OnnxTextError
    from search_spaces.exceptions import SearchSpaceError

    return (NasError, SearchSpaceError, PredictorError, OnnxTextError, OSError)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that every command cleans up the same way (a search is
    left ``interrupted``, open files are flushed and closed, child processes are stopped)."""


def _one_line(err: BaseException) -> tuple[str, str]:
    """``(first line, the rest)`` of an error's message."""
    if isinstance(err, OSError) and err.strerror:  # "[Errno 28] No space left on device: 'x'" -> "x: No space ..."
        text = f"{err.filename}: {err.strerror}" if err.filename is not None else err.strerror
    else:
        text = str(err).strip() or type(err).__name__
    lines = text.splitlines()
    return lines[0], "\n".join(lines[1:])


def _usage_error(err: BaseException) -> int:
    """A usage error of Typer's bundled click (bad option, bad value, missing argument): one line, exit 2."""
    ctx = getattr(err, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    message = err.format_message() if hasattr(err, "format_message") else str(err)
    print(f"error: {' '.join(str(message).split())}{where}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning known errors into one ``error:`` line and exit code 2.

    Usage errors (unknown option, bad value, missing argument) are errors like any other: one line, exit 2.
    Ctrl-C exits with 130 and SIGTERM with 143, both after the same clean-up (``KeyboardInterrupt``). Ray's
    environment defaults (:mod:`nas.cli.environment`) are set first.
    """
    set_ray_defaults()
    terminated: list[int] = []  # Typer turns the interrupt into exit code 130: remember that it was SIGTERM

    def on_sigterm(signum: int, frame: object) -> None:
        terminated.append(signum)
        raise Terminated()

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        code = app(args=argv, prog_name="nas", standalone_mode=False)
        if terminated:
            sys.exit(143)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            sys.exit(code)  # Typer returns typer.Exit's code (and 130 for Ctrl-C) in non-standalone mode
    except typer.Exit as stop:
        sys.exit(143 if terminated else stop.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(143 if terminated else 130)
    except typer.TyperException as err:  # typer >= 0.29 bundles click: its exceptions derive from TyperException
        if type(err).__name__ == "NoArgsIsHelpError":
            err.show()  # type: ignore[attr-defined]
            sys.exit(2)
        if os.environ.get("NAS_DEBUG"):
            raise
        sys.exit(_usage_error(err))
    except Exception as err:  # noqa: BLE001 - the edge of the program
        if os.environ.get("NAS_DEBUG") or not isinstance(err, _known_errors()):
            raise
        first_line, detail = _one_line(err)
        print(f"error: {first_line}", file=sys.stderr)
        if detail:
            print(detail, file=sys.stderr)
        sys.exit(2)
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)  # main() may run inside another program (tests)


if __name__ == "__main__":
    main()
