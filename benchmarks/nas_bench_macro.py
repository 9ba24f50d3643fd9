"""Build every NAS-Bench-Macro architecture and check it against the published table.

For each of the 6,561 architectures in ``../shared/data/nas-bench-macro/nas-bench-macro_cifar10.json``: derive it
from its 8-digit string with the ``nb-macro`` grammar, build the graph and the torch module, and compare

- parameters: graph count, torch's ``sum(p.numel())`` and the table's ``params`` (must be equal);
- FLOPs: the graph's FLOPs (2 per multiply-accumulate, FlopCounterMode's convention) against twice the table's
  ``flops`` column (which counts multiply-accumulates).

Run from the repository root::

    python benchmarks/nas_bench_macro.py [--table PATH] [--out benchmarks/results/nas_bench_macro.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from nas.compile.torch import compile_graph  # noqa: E402
from nas.ir.build import build_graph  # noqa: E402
from search_spaces.spaces import get_space  # noqa: E402

DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "nas_bench_macro.json")
    args = parser.parse_args(argv)
    table = json.loads(args.table.read_text())
    space = get_space("nb-macro", (3, 32, 32))
    counts = {"architectures": len(table), "params_equal_table": 0, "params_equal_torch": 0, "flops_equal_2x_table": 0,
              "arch_string_round_trip": 0}
    mismatches: list[dict] = []
    t0 = time.perf_counter()
    for arch, row in sorted(table.items()):
        derivation = space.from_arch(arch)
        graph = build_graph(space, derivation, num_classes=10)
        module = compile_graph(graph)
        torch_params = sum(p.numel() for p in module.parameters())
        ok_params, ok_torch = graph.num_params() == row["params"], torch_params == graph.num_params()
        ok_flops = graph.flops() == 2 * row["flops"]
        ok_arch = space.arch_string(derivation) == arch
        for key, ok in [("params_equal_table", ok_params), ("params_equal_torch", ok_torch),
                        ("flops_equal_2x_table", ok_flops), ("arch_string_round_trip", ok_arch)]:
            counts[key] += ok
        if not (ok_params and ok_torch and ok_flops and ok_arch) and len(mismatches) < 20:
            mismatches.append({"arch": arch, "table_params": row["params"], "graph_params": graph.num_params(),
                               "torch_params": torch_params, "table_flops": row["flops"], "graph_flops": graph.flops()})
    seconds = time.perf_counter() - t0
    report = {"command": "python benchmarks/nas_bench_macro.py", "counts": counts, "mismatches": mismatches,
              "seconds": seconds, "seconds_per_architecture": seconds / len(table)}

    out = Table("check", "count")
    for key, value in counts.items():
        out.add_row(key, f"{value:,}/{len(table):,}" if key != "architectures" else f"{value:,}")
    Console().print(out)
    print(f"{seconds:.1f} s ({1000 * seconds / len(table):.1f} ms per architecture: derive, graph, torch module)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    md = ["# NAS-Bench-Macro: every architecture against the published table", "",
          f"Command: `{report['command']}`", "", "| check | count |", "|---|---:|"]
    md += [f"| {k} | {v:,}{'' if k == 'architectures' else f'/{len(table):,}'} |" for k, v in counts.items()]
    md += ["", "FLOPs are 2 per multiply-accumulate (torch's FlopCounterMode); the table counts multiply-accumulates.",
           f"Runtime {seconds:.1f} s ({1000 * seconds / len(table):.1f} ms per architecture).",
           "", "Mismatches: " + ("none." if not mismatches else json.dumps(mismatches))]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
