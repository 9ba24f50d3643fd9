"""Shared fixtures: spaces are cached per session because their samplers memoise reachability."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nas.cli.environment import set_ray_defaults
from search_spaces.spaces import Space, get_space
from tests._postgres import PostgresServer, start_postgres

set_ray_defaults()  # the tests drive Ray and Tune inside this process, in the environment the command line sets

INPUTS = {"image3x32x32": ("einspace", (3, 32, 32)), "image1x8x8": ("einspace", (1, 8, 8)),
          "sequence1x40": ("einspace-1d", (1, 40)), "nb201": ("nb201", (3, 16, 16)),
          "nb-macro": ("nb-macro", (3, 16, 16)), "hnb201": ("hnb201", (3, 16, 16)),
          "hnb201-shared": ("hnb201-shared", (3, 16, 16)), "hnb201-einspace": ("hnb201-einspace", (3, 8, 8)),
          "seq-templates": ("seq-templates", (1, 40))}


# Markers by module (pyproject registers them): `ray` where a local Ray cluster is started, `slow` where a module
# trains, searches, runs the CLI in subprocesses, serves HTTP or drives a browser. `pytest -m "not slow"` is the
# fast loop for development; single slow tests inside fast modules carry @pytest.mark.slow themselves.
RAY_MODULES = {"tests/nas/search/test_asynchronous.py", "tests/nas/search/test_driver.py",
               "tests/nas/search/test_resume.py", "tests/nas/search/test_tune_runner.py",
               "tests/nas/viz/test_report.py", "tests/nas/search/test_checkpoints.py",
               "tests/nas/search/test_cluster_gpu.py", "tests/nas/search/test_jobs.py",
               "tests/nas/search/test_surrogate.py", "tests/nas/search/test_reaper.py",
               "tests/nas/search/test_nodes_leave.py"}
SLOW_MODULES = RAY_MODULES | {
    "tests/nas/bench/test_correlate.py", "tests/nas/bench/test_labelled.py", "tests/nas/cli/test_app.py",
    "tests/nas/cli/test_bad_inputs.py", "tests/nas/cli/test_predictor.py", "tests/nas/search/test_table_search.py",
    "tests/nas/store/test_store.py", "tests/nas/train/test_trainer.py", "tests/nas/viz/test_picture.py",
    "tests/predictors/test_onnx_net.py", "tests/search_spaces/test_nats_sss.py", "tests/test_fuzz.py",
    "tests/nas/store/test_store_faults.py", "tests/nas/store/test_migrations.py", "tests/nas/store/test_read_only.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        module = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if module in RAY_MODULES:
            item.add_marker(pytest.mark.ray)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def spaces() -> dict[str, Space]:
    return {label: get_space(name, shape) for label, (name, shape) in INPUTS.items()}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server of this test session (tests/_postgres.py); skips when none can start."""
    server = start_postgres()
    if server is None:
        pytest.skip("no PostgreSQL server can be started here (needs Debian's postgresql, root and psycopg)")
    try:
        yield server
    finally:
        server.remove()
