"""Make the pictures under docs/: one einspace network of 40-60 IR nodes, and a screenshot of a search report.

    python docs/make_screenshots.py --db sqlite:///nas.db --name default     # after `nas search run`

Writes ``docs/einspace_network.{svg,png}`` (the first einspace sample, 3x32x32 input, with 40-60 IR nodes and
the most kinds of op among the first 300 seeds) and ``docs/report.png`` (the report of search NAME, opened in
headless Chromium: Debian's /usr/bin/chromium through Playwright, as the tests do).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def einspace_picture() -> list[Path]:
    from nas.ir.build import build_graph
    from nas.viz.picture import write_picture
    from search_spaces.spaces import get_space

    space = get_space("einspace", (3, 32, 32))
    best = None
    for seed in range(300):
        derivation = space.sample(seed=seed)
        graph = build_graph(space, derivation, 10)
        if 40 <= graph.g.number_of_nodes() <= 60:
            kinds = len(graph.op_histogram())
            if best is None or kinds > best[0]:
                best = (kinds, seed, graph)
    assert best is not None, "no 40-60 node einspace network among 300 samples"
    _, seed, graph = best
    title = (f"einspace sample seed {seed}: {graph.g.number_of_nodes()} IR nodes, {graph.num_params():,} params, "
             f"{graph.flops():,} FLOPs")
    return [write_picture(graph, DOCS / f"einspace_network.{ext}", title=title) for ext in ("svg", "png")]


def report_screenshot(db: str, name: str) -> Path:
    from playwright.sync_api import sync_playwright

    from nas.store import Store
    from nas.viz.report import write_report

    with tempfile.TemporaryDirectory() as folder, Store(db) as store:
        html = write_report(store, name, Path(folder) / "report.html")
        out = DOCS / "report.png"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(html.as_uri(), wait_until="load")
            page.wait_for_function("[...document.querySelectorAll('.js-plotly-plot')].every(d => d._fullLayout)")
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///nas.db")
    parser.add_argument("--name", default="default")
    args = parser.parse_args()
    for path in einspace_picture() + [report_screenshot(args.db, args.name)]:
        print(path)


if __name__ == "__main__":
    main()
