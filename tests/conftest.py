"""Shared fixtures: spaces are cached per session because their samplers memoise reachability."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
# fast loop for development (README: under 2 minutes here); the full `pytest` (CI) runs everything.
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
    "tests/nas/store/test_store_faults.py", "tests/nas/store/test_migrations.py", "tests/nas/store/test_read_only.py",
    "tests/predictors/test_encoding_golden.py"}
# Single tests of fast modules that take seconds here (measured with --durations; listed here rather than decorated
# so that the modules of other work stay untouched): "module::test" marks every parametrisation of the test,
# "module::test[id]" one of them. A name that no longer exists in its module is a collection error.
SLOW_TESTS = {
    "tests/nas/search/test_strategies.py::test_replay_rebuilds_the_same_strategy[surrogate]",
    "tests/nas/search/test_strategies.py::test_ask_gives_distinct_valid_derivations[surrogate]",
    "tests/nas/search/test_strategies.py::test_evolution_guided_and_adaptive_beat_random_search",
    "tests/search_spaces/test_sampler.py::test_crossover_gives_valid_children",
    "tests/search_spaces/test_sampler.py::test_every_sample_is_valid",
    "tests/search_spaces/test_sampler.py::test_mutation_gives_valid_children_with_types_preserved",
    "tests/search_spaces/test_sampler.py::test_budgets_are_respected_exactly",
    "tests/search_spaces/test_sampler.py::test_computation_probability_changes_sizes",
    "tests/nas/ir/test_graph.py::test_identical_derivations_hash_equal_and_distinct_ones_mostly_differ",
    "tests/search_spaces/test_spaces.py::test_nb_macro_matches_the_table_on_a_large_sample",
    "tests/predictors/test_predictor_files.py::"
    "test_a_target_space_whose_features_were_constant_in_training_stays_in_range",
    "tests/predictors/test_predictor_input.py::test_feature_vectors_of_the_default_keep_them_apart",
    # the four tests of the module-scoped `sized` fixture (fitting it takes seconds)
    "tests/predictors/test_predictor_size.py::test_size_term_transfers_to_a_space_of_other_absolute_sizes",
    "tests/predictors/test_predictor_size.py::test_predict_is_predict_features_of_the_raw_rows",
    "tests/predictors/test_predictor_size.py::test_size_prior_round_trip_and_fine_tuning",
    "tests/predictors/test_predictor_size.py::test_a_file_without_the_size_tensors_is_refused",
    "tests/predictors/test_zero_cost.py::test_import_is_light",
    # the three tests of the session-scoped `small_corpora` fixture (tests/nas/conftest.py: seconds to build)
    "tests/nas/bench/test_predictor_corpus.py::test_a_table_becomes_one_labelled_row_per_architecture",
    "tests/nas/bench/test_predictor_eval.py::test_baselines_rank_by_params_flops_and_forests",
    "tests/nas/bench/test_predictor_corpus.py::test_nats_sss_gives_one_corpus_per_dataset_from_one_encoding",
    "tests/nas/export/test_compile_export.py::test_dynamo_exporter_runs",
    "tests/nas/data/test_datasets.py::test_mnist5k",
    "tests/nas/data/test_datasets.py::test_mnist1d_keeps_its_test_set_and_leaves_global_rngs_alone",
}


def _module_markers(module: str) -> set[str]:
    return ({"ray"} if module in RAY_MODULES else set()) | ({"slow"} if module in SLOW_MODULES else set())


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Not even import a module whose every test ``-m`` deselects (its markers come from the module lists above):
    collecting the slow modules costs seconds of imports (Ray Tune, Hypothesis, SQLAlchemy) the fast loop never
    uses. Only the marker expression is consulted here; anything undecidable falls back to normal collection."""
    expression = config.getoption("markexpr", "")
    if not expression or collection_path.suffix != ".py" or not collection_path.is_relative_to(config.rootpath):
        return None
    module = collection_path.relative_to(config.rootpath).as_posix()
    if module not in SLOW_MODULES:
        return None
    try:  # pytest's own parser of -m expressions (a private module; pytest >= 8 has it in this place)
        from _pytest.mark.expression import Expression

        selected = Expression.compile(expression).evaluate(lambda name, **_: name in _module_markers(module))
    except Exception:  # noqa: BLE001 - another pytest: collect as usual, -m then deselects
        return None
    return True if not selected else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        module = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        for marker in sorted(_module_markers(module)):
            item.add_marker(getattr(pytest.mark, marker))
        name = item.nodeid.split("::", 1)[-1]
        if f"{module}::{name}" in SLOW_TESTS or f"{module}::{name.split('[', 1)[0]}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    modules = {item.path.relative_to(root).as_posix(): item for item in items if item.path.is_relative_to(root)}
    for entry in sorted(SLOW_TESTS):
        module, name = entry.split("::", 1)
        item = modules.get(module)
        if item is not None and isinstance(item, pytest.Function) and \
                not hasattr(item.module, name.split("[", 1)[0]):
            raise pytest.UsageError(f"tests/conftest.py: SLOW_TESTS names {entry}, which {module} no longer has")


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
