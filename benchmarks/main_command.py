"""Time README's main command (`nas search run`, all defaults) from an empty store and keep what it printed.

    python benchmarks/main_command.py     # -> benchmarks/results/main_command.{md,json}
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        t = time.perf_counter()
        run = subprocess.run(["nas", "search", "run"], cwd=work, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t
    test = re.search(r"test acc(?:uracy)?\D*([0-9.]+)", run.stdout)
    report = {"command": "nas search run", "seconds": seconds, "exit_code": run.returncode,
              "test_acc_printed": test.group(1) if test else None, "stdout": run.stdout}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "main_command.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / "main_command.md").write_text(
        f"# README main command\n\nCommand: `python benchmarks/main_command.py` (runs `nas search run` in an empty "
        f"directory, 2-core sandbox).\n\nWall time: **{seconds:.0f} s**, exit code {run.returncode}.\n\n"
        f"```\n{run.stdout.strip()}\n```\n")
    print(f"{seconds:.0f} s, exit {run.returncode}\n{run.stdout}")


if __name__ == "__main__":
    main()
