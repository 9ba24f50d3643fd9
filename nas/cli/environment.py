"""The process environment the command line sets for Ray and Ray Tune before any command runs.

Library code sets no environment variables; these are read by Ray (or Tune) only from the environment of the
driver process, so the program's edge sets them, as defaults an explicit setting overrides. Code that drives
:func:`nas.search.run_search` itself can call :func:`set_ray_defaults` first, or set them in its shell.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["RAY_DEFAULTS", "set_ray_defaults"]

RAY_DEFAULTS: dict[str, str] = {
    # a local Ray without token authentication (Ray >= 2.5x enables it by default for a new local cluster)
    "RAY_AUTH_MODE": "disabled",
    # Ctrl-C must interrupt a search (and leave it `interrupted`), not ask Tune to "finish" the running trials
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    # Tune's new output engine prints a table to stdout even at verbose=0; the legacy one prints nothing there
    "RAY_AIR_NEW_OUTPUT": "0",
    # a trial that fails (its trainable raised, its worker or its node died) is recorded in the store with one line
    # naming the exception (`nas search show`) and reported by the progress line; Tune would also log its whole
    # traceback to the console. Set it to 1 in the shell to get those tracebacks back while debugging a trainable.
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
}


def set_ray_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set each of :data:`RAY_DEFAULTS` in ``environ`` (default: ``os.environ``) unless it is set already."""
    target = os.environ if environ is None else environ
    for name, value in RAY_DEFAULTS.items():
        target.setdefault(name, value)
