"""Pictures and reports of a real search: a tiny trained search on digits (local Ray, SQLite store shared with
Optuna), its HTML report opened in headless Chromium, and optuna-dashboard serving a trial's picture over HTTP.

No mocks: Debian's ``chromium`` driven through Playwright (``executable_path``, no browser download), a real
``optuna-dashboard`` process on a free port. The browser tests skip, naming the reason, only where Chromium or
Playwright is truly absent; ``.ci/run`` installs both.
"""

from __future__ import annotations

import html
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nas.cli.app import main
from nas.search import SearchConfig, SearchProgress, SearchSummary, run_search
from nas.store import Store
from tests._dashboard import get_json, running_dashboard

NAME = "viz"
BUDGET = 4
FAULTS = {1: "raise"}
CONFIG = SearchConfig(strategy="random", seeds=(), budget=BUDGET, batch=BUDGET, oversample=2,
                      scorers=("predictor", "synflow"), seed=3, objectives=("val_acc", "params"),
                      train={"epochs": 2, "max_batches_per_epoch": 8},
                      tune={"num_cpus": 2, "grace_period": 1, "reduction_factor": 2}, faults=FAULTS)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _playwright() -> Any:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium chromium-driver; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[test]')")
    return sync_playwright


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SearchSummary, list[SearchProgress]]]:
    import ray

    started_ray = not ray.is_initialized()
    db = f"sqlite:///{tmp_path_factory.mktemp('viz') / 'nas.db'}"
    events: list[SearchProgress] = []
    summary = run_search(CONFIG, name=NAME, db=db, progress=events.append)
    yield db, summary, events
    if started_ray:
        ray.shutdown()


def test_progress_reports_running_queued_and_failed(searched: tuple[str, SearchSummary, list]) -> None:
    _, summary, events = searched
    assert summary.finished == BUDGET and summary.failed == len(FAULTS)
    round_event = next(e for e in events if e.event == "round")
    assert round_event.queued == BUDGET and round_event.running == 0  # queued, nothing has reported an epoch yet
    assert any(e.running > 0 for e in events if e.event == "epoch")  # trials training report as running
    for e in events:
        assert e.finished + e.running + e.queued <= BUDGET
    trials = [e for e in events if e.event == "trial"]
    assert [e.failed for e in trials][-1] == len(FAULTS) and events[-1].running == events[-1].queued == 0
    assert all(b.failed >= a.failed for a, b in zip(trials, trials[1:]))


def test_report_opens_in_headless_chromium_with_every_plot_drawn(searched: tuple[str, SearchSummary, list],
                                                                  tmp_path: Path) -> None:
    sync_playwright = _playwright()
    db, summary, _ = searched
    out = tmp_path / "report.html"
    main(["search", "report", NAME, "--db", db, "--out", str(out)])
    text = out.read_text()
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in text  # plotly's JavaScript is inside; nothing else is loaded from anywhere
    outside = text.replace(get_plotlyjs(), "")
    assert "<script src" not in outside and "<link" not in outside and "http" not in outside.replace(
        "http://www.w3.org", "")
    requests: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0 && "
                                   "[...document.querySelectorAll('.js-plotly-plot')].every(d => d._fullLayout)")
            plots = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(d => {
                const svg = d.querySelector('svg.main-svg'); const box = svg ? svg.getBoundingClientRect() : null;
                return {id: d.id, width: box ? box.width : 0, height: box ? box.height : 0,
                        traces: d.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length,
                        points: d.querySelectorAll('.scatterlayer .point, .barlayer .point, .js-line').length,
                        title: (d.querySelector('.gtitle') || {}).textContent || ''};
            })""")
            pictures = page.evaluate("() => [...document.querySelectorAll('figure.arch svg')].map(s => "
                                     "s.getBoundingClientRect().width * s.getBoundingClientRect().height)")
            failed_rows = page.evaluate("() => document.querySelectorAll('#failed tr').length - 1")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not console_errors and not page_errors, (console_errors, page_errors)
    assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests  # no network
    ids = {p["id"] for p in plots}
    assert {"best-vs-trials", "best-vs-time", "pareto-0", "learning-curves", "sizes-params", "sizes-flops"} <= ids
    assert {"score-0", "score-1", "score-2"} <= ids  # predictor, synflow and the combined rank
    for plot in plots:  # every plot rendered: an SVG of real size with drawn data
        assert plot["width"] > 200 and plot["height"] > 200 and plot["traces"] >= 1 and plot["points"] >= 1, plot
    titles = " | ".join(p["title"] for p in plots)
    assert "Kendall tau" in titles and "Pareto front" in titles
    assert len(pictures) == min(3, summary.ok + summary.stopped) and all(a > 10_000 for a in pictures)
    assert failed_rows == len(FAULTS) and "injected fault" in text
    assert (tmp_path / "report.png").stat().st_size > 50_000


def test_optuna_dashboard_serves_each_trials_picture(searched: tuple[str, SearchSummary, list],
                                                      tmp_path: Path) -> None:
    db, summary, _ = searched
    with Store(db) as store:
        hashes = {t.arch_hash for t in store.trials_of(NAME)}
        artifact_dir = store.artifact_dir
    with running_dashboard(db, artifact_dir, tmp_path / "dashboard.log") as base:
        (study,) = [s for s in get_json(f"{base}/api/studies")["study_summaries"] if s["study_name"] == NAME]
        detail = get_json(f"{base}/api/studies/{study['study_id']}")
        assert len(detail["trials"]) == BUDGET
        for trial in detail["trials"]:
            h = next(a["value"] for a in trial["user_attrs"] if a["key"] == "hash")
            assert h in hashes
            (svg_meta,) = [a for a in trial["artifacts"] if a["filename"] == f"{h}.svg"]
            assert svg_meta["mimetype"] == "image/svg+xml"
            url = f"/artifacts/{study['study_id']}/{trial['trial_id']}/{svg_meta['artifact_id']}"
            with urllib.request.urlopen(base + url, timeout=10) as response:
                assert response.headers["Content-Type"] == "image/svg+xml"
                svg = html.unescape(response.read().decode())
            assert "<svg" in svg and "input 1x8x8" in svg and "output 10" in svg  # digits: 1x8x8 in, 10 classes
            # the trial note shows the picture (optuna-dashboard renders notes as Markdown)
            note = trial["note"]["body"]
            assert f"]({url})" in note and h[:12] in note and trial["note"]["version"] == 1
    del summary


def test_dashboard_trial_page_shows_the_picture_in_chromium(searched: tuple[str, SearchSummary, list],
                                                             tmp_path: Path) -> None:
    sync_playwright = _playwright()
    db, _, _ = searched
    with Store(db) as store:
        artifact_dir = store.artifact_dir
    with running_dashboard(db, artifact_dir, tmp_path / "dashboard.log") as base:
        (study,) = [s for s in get_json(f"{base}/api/studies")["study_summaries"] if s["study_name"] == NAME]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{base}/dashboard/studies/{study['study_id']}/trials", wait_until="networkidle")
                page.wait_for_function("[...document.images].some(i => i.src.includes('/artifacts/') && "
                                       "i.complete && i.naturalWidth > 0)", timeout=30_000)
                shown = page.evaluate("() => [...document.images].filter(i => i.src.includes('/artifacts/') && "
                                      "i.naturalWidth > 0).map(i => i.src)")
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            finally:
                browser.close()
    assert shown, "no architecture picture rendered on the trial page"


def test_cli_show_draws_a_stored_hash(searched: tuple[str, SearchSummary, list], tmp_path: Path) -> None:
    db, summary, _ = searched
    assert summary.best is not None
    out = tmp_path / "best.svg"
    main(["show", summary.best.arch_hash[:10], "--db", db, "--out", str(out)])
    assert out.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in out.read_bytes()
