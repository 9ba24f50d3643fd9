"""Run the command line in-process (``nas.cli.app.main``) and capture what it printed."""

from __future__ import annotations

import pytest

from nas.cli.app import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``nas ARGS``."""
    try:
        main(list(args))
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
