"""Bad input and faults, tried as a careless or hostile user would (issue 17): one case per reported item, plus
cases that were already clean so that they stay clean.

Every case runs the real ``nas`` command in a subprocess under a timeout (no hang), and checks that it exits with
code 2, prints exactly one ``error:`` line and no traceback, and leaves every file that existed before it
(grammars, configs, stores, earlier outputs) byte for byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parents[4] / "shared" / "data" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
TIME_BOUND_S = 240  # generous: the shared CI machine is often loaded; a hang is what this catches
HOSTILE = "x'; touch pwned; echo '"
OLD_STORE = Path(__file__).resolve().parents[1] / "store" / "data" / "store_schema2_main.sql"


def nas(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = TIME_BOUND_S
        ) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("NAS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "nas.cli.app", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """Hash of every file under ``folder`` (SQLite side files excluded: readers may create them)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))
            and not p.is_symlink()}


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]  # (Ray may log "Started a local Ray instance." before it)
    assert message in errors[0], errors[0]


# ----------------------------------------------------------------------------------------------- the fixtures


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one finished table search whose name is hostile to shells (budget 4, no Ray)."""
    if not TABLE.is_file():
        pytest.skip(f"no NAS-Bench-Macro table at {TABLE}")
    folder = tmp_path_factory.mktemp("store")
    result = nas("search", "run", "--name", HOSTILE, "--space", "nb-macro", "--evaluator", f"table:{TABLE}",
                 "--budget", "4", "--db", f"sqlite:///{folder / 's.db'}", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def trial_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT id, status, val_acc FROM nas_trials ORDER BY id").fetchall()


@dataclass
class Case:
    """One bad input: ``args`` (``{d}`` is the case's folder, ``{db}`` its store URL), files to create first
    (text, or bytes), and the fragment the one error line must contain."""

    args: tuple[str, ...]
    message: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    store: bool = False  # copy the populated store into the case's folder first
    env: dict[str, str] = field(default_factory=dict)


def _deep_derivation(n: int) -> str:
    return "(sequential " * n + "identity" + " identity)" * n


RUNAWAY = "net -> sequential(net, net) | identity;\n"
BOMB = "strategy_options:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
T = "table:{d}/tiny-nb-macro.json"  # a two-row table the parametrised cases write: they must not need ../shared
TINY_TABLE = '{"00000000": 0.5, "01201201": 0.7}'


CASES: dict[str, Case] = {
    # 1. a stale RAY_ADDRESS: `--address auto` joins it, and fails fast instead of hanging
    "1-stale-ray-address-auto": Case(("search", "run", "--budget", "1", "--address", "auto", "--scorers", "",
                                      "--db", "{db}"), "cannot connect to the Ray cluster at 127.0.0.1:1",
                                     env={"RAY_ADDRESS": "127.0.0.1:1"}),
    # 3. usage errors (typer 0.29 bundles click): one line, exit 2
    "3-sample-n-0": Case(("sample", "-n", "0", "--out", "{d}/o"), "'-n' / '--num'"),
    "3-unknown-option": Case(("sample", "--bogus"), "No such option: --bogus"),
    "3-budget-0": Case(("search", "run", "--budget", "0", "--db", "{db}"), "'--budget'"),
    "3-export-top-0": Case(("search", "export", "x", "--top", "0", "--db", "{db}"), "'--top'"),
    "3-missing-argument": Case(("search", "show"), "Missing argument"),
    "3-not-an-integer": Case(("sample", "--num-classes", "1e8", "--out", "{d}/o"), "'--num-classes'"),
    # 5. tracebacks that became error lines
    "5-grammar-not-utf8": Case(("check-grammar", "{d}/g.grammar"), "not UTF-8 text",
                               {"g.grammar": "net -> identity;\n".encode("utf-16")}),
    "5-arch-file-not-utf8": Case(("sample", "--arch-file", "{d}/a.txt", "--out", "{d}/o"), "not UTF-8 text",
                                 {"a.txt": b"\xff\xfe(sequential norm"}),
    "5-grammar-imports-itself": Case(("check-grammar", "{d}/self.grammar"), "import cycle",
                                     {"self.grammar": 'import "self.grammar" as s;\nnet -> identity;\n'}),
    "5-grammars-import-each-other": Case(("check-grammar", "{d}/a.grammar"), "import cycle", {
        "a.grammar": 'import "b.grammar" as b;\nnet -> identity;\n',
        "b.grammar": 'import "a.grammar" as a;\nnet -> identity;\n'}),
    "5-derivation-900-deep": Case(("sample", "--input-shape", "1,8,8", "--arch-file", "{d}/deep.txt", "--out",
                                   "{d}/o"), "nested deeper than", {"deep.txt": _deep_derivation(900)}),
    "5-max-depth-100000": Case(("sample", "--grammar", "{d}/run.grammar", "--max-depth", "100000", "--input-shape",
                                "1,8,8", "--out", "{d}/o"), "max_depth must be at most", {"run.grammar": RUNAWAY}),
    "5-out-is-a-file": Case(("sample", "-n", "1", "--out", "{d}/f"), "is a file, not a folder", {"f": "keep me"}),
    "5-predictor-eval-not-a-corpus": Case(("predictor", "eval", "-c", "{d}/c.jsonl.gz"),
                                          "neither a predictor corpus nor a labelled benchmark",
                                          {"c.jsonl.gz": "plain text"}),
    "5-predictor-fit-not-a-corpus": Case(("predictor", "fit", "-c", "{d}/c.jsonl.gz", "--out", "{d}/p"),
                                         "neither a predictor corpus nor a labelled benchmark",
                                         {"c.jsonl.gz": b"\x1f\x8b\x08garbage"}),
    "5-empty-name": Case(("search", "run", "--name", "", "--space", "nb-macro", "--evaluator", T, "--db", "{db}"),
                         "non-empty name"),
    "5-negative-seed": Case(("search", "run", "--seed", "-1", "--space", "nb-macro", "--evaluator", T, "--db",
                             "{db}"), "seed must be an integer"),
    "5-seed-abc": Case(("search", "run", "--config", "{d}/c.yaml", "--db", "{db}"), "seed must be an integer",
                       {"c.yaml": 'seed: "abc"\n'}),
    "5-string-in-limits": Case(("search", "run", "--config", "{d}/c.yaml", "--db", "{db}"),
                               "max_params must be an integer", {"c.yaml": "limits: {max_params: big}\n"}),
    "5-unicode-digit": Case(("sample", "--space", "nb-macro", "--arch", "0\u00b2012100", "--out", "{d}/o"),
                            "architecture strings have 8 digits"),
    "5-export-out-is-a-file": Case(("search", "export", HOSTILE, "--out", "{d}/f", "--db", "{db}"),
                                   "is a file, not a folder", {"f": "keep me"}, store=True),
    "5-plot-out-is-a-file": Case(("search", "plot", HOSTILE, "--out", "{d}/f", "--db", "{db}"),
                                 "is a file, not a folder", {"f": "keep me"}, store=True),
    "5-name-300-characters": Case(("search", "run", "--name", "n" * 300, "--space", "nb-macro", "--evaluator", T,
                                   "--db", "{db}"), "at most 100 characters", store=True),
    # 6. hostile sizes
    "6-yaml-alias-bomb": Case(("search", "run", "--config", "{d}/bomb.yaml", "--db", "{db}"),
                              "expands to more than", {"bomb.yaml": BOMB}),
    "6-negative-width": Case(("check-grammar", "{d}/neg.grammar"), "'width' must be >= 1",
                             {"neg.grammar": "net -> linear(width = -5);\n"}),
    "6-num-classes-1e8": Case(("sample", "--num-classes", "100000000", "--out", "{d}/o"), "'--num-classes'"),
    "6-grammar-over-1-mib": Case(("check-grammar", "{d}/big.grammar"), "more than grammar files may have",
                                 {"big.grammar": "# " + "x" * (1 << 20) + "\nnet -> identity;\n"}),
    "6-domain-product": Case(("check-grammar", "{d}/p.grammar"), "expand to", {
        "p.grammar": "net -> routing(pre, m, post);\npre -> im2col(kernel in {%s}, stride in {%s}, padding in {%s});"
                     "\nm -> identity;\npost -> identity;\n" % ((", ".join(map(str, range(1, 60))),) * 3)}),
    # 7. credentials: never in the message, and the password as a whole token only
    "7-password-masked": Case(("search", "ls", "--db", "postgresql+psycopg://user:on@127.0.0.1:1/db"),
                              "user:***@127.0.0.1:1/db"),
    "7-search-exists-hint-quoted": Case(("search", "run", "--name", HOSTILE, "--space", "nb-macro", "--evaluator", T,
                                         "--db", "{db}"), "nas search resume 'x'\"'\"'; touch pwned; echo '\"'\"''",
                                        store=True),
    # 8. output files
    "8-sample-into-used-folder": Case(("sample", "-n", "1", "--out", "{d}/o"), "already holds a summary.jsonl",
                                      {"o/summary.jsonl": '{"file": "00000_x.onnx"}\n'}),
    # 9. smaller
    "9-import-reads-only-grammars": Case(("check-grammar", "{d}/i.grammar"), "only .grammar files",
                                         {"i.grammar": 'import "/etc/passwd" as p;\nnet -> identity;\n'}),
    "9-foreign-sqlite": Case(("search", "ls", "--db", "sqlite:///{d}/their.db"), "another application's database"),
    "9-foreign-sqlite-run": Case(("search", "run", "--space", "nb-macro", "--evaluator", T, "--db",
                                  "sqlite:///{d}/their.db"), "pass --allow-foreign-db"),
    "9-read-never-creates-a-store": Case(("search", "ls", "--db", "sqlite:///{d}/none.db"), "no store at"),
    "9-read-never-migrates": Case(("search", "show", "s1", "--db", "sqlite:///{d}/old.db"), "nas store upgrade"),
    # already clean: they stay clean
    "ok-unknown-space": Case(("sample", "--space", "einspaec", "--out", "{d}/o"), "did you mean 'einspace'"),
    "ok-bad-shape": Case(("sample", "--input-shape", "3,a,4", "--out", "{d}/o"), "comma-separated integers"),
    "ok-missing-grammar": Case(("check-grammar", "{d}/missing.grammar"), "cannot read grammar file"),
    "ok-unknown-search": Case(("search", "show", "nope", "--db", "{db}"), "no search named 'nope'", store=True),
    "ok-not-a-database": Case(("search", "ls", "--db", "sqlite:///{d}/x.db"), "cannot open the store",
                              {"x.db": b"not a database at all" * 100}),
    "ok-unknown-strategy": Case(("search", "run", "--strategy", "nope", "--space", "nb-macro", "--evaluator", T,
                                 "--db", "{db}"), "nope"),
}


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_one_error_line_and_changes_nothing(case_id: str, tmp_path: Path, request) -> None:
    case = CASES[case_id]
    if case.store:
        shutil.copytree(request.getfixturevalue("store_dir"), tmp_path, dirs_exist_ok=True)
    files = {**({"tiny-nb-macro.json": TINY_TABLE} if T in case.args else {}), **case.files}
    for name, content in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case_id.startswith("9-foreign-sqlite"):
        with sqlite3.connect(tmp_path / "their.db") as connection:
            connection.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    if case_id == "9-read-never-migrates":  # a store of the last main before migrations existed
        with sqlite3.connect(tmp_path / "old.db") as connection:
            connection.executescript(OLD_STORE.read_text(encoding="utf-8"))
    before = snapshot(tmp_path)
    args = tuple(a.replace("{d}", str(tmp_path)).replace("{db}", f"sqlite:///{tmp_path / 's.db'}")
                 for a in case.args)
    result = nas(*args, cwd=tmp_path, env=case.env)
    assert_one_error_line(result, case.message)
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing that existed was changed
    if case_id == "9-read-never-creates-a-store":
        assert not (tmp_path / "none.db").exists()
    if case_id.startswith("7-"):
        assert ":on@" not in result.stderr and "c***necti" not in result.stderr
    if case.store:
        assert trial_rows(tmp_path / "s.db") == trial_rows(request.getfixturevalue("store_dir") / "s.db")


# ------------------------------------------------------------------------ item 4: the artifact folder is checked


def test_unwritable_artifact_folder_is_found_before_training(store_dir: Path, tmp_path: Path) -> None:
    """4. The store's artifact folder cannot be written (here: a link to read-only sysfs): the run fails before
    anything is evaluated, and the stored search keeps every result."""
    if not os.access("/sys/kernel", os.F_OK) or os.access("/sys/kernel", os.W_OK):
        pytest.skip("needs a folder that cannot be written (read-only /sys/kernel)")
    shutil.copy(store_dir / "s.db", tmp_path / "s.db")
    (tmp_path / "s_artifacts").symlink_to("/sys/kernel")
    before = trial_rows(tmp_path / "s.db")
    result = nas("search", "run", "--name", "second", "--space", "nb-macro", "--evaluator", f"table:{TABLE}",
                 "--budget", "2",
                 "--db", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert_one_error_line(result, "is not writable")
    assert trial_rows(tmp_path / "s.db") == before
    with sqlite3.connect(tmp_path / "s.db") as connection:
        assert [r[0] for r in connection.execute("SELECT name FROM nas_searches")] == [HOSTILE]


# ------------------------------------------------------------------- items 1, 2: Ray, resources, resume repairs


def test_impossible_resources_fail_in_seconds_on_a_local_ray_despite_a_stale_ray_address(tmp_path: Path) -> None:
    """1 + 2. With a dead cluster in RAY_ADDRESS, a plain run still starts its own local Ray (it does not hang on
    the dead one), and a trial request no node can meet fails at start with the option that repairs it; nothing
    is stored."""
    started = time.monotonic()
    result = nas("search", "run", "--budget", "1", "--gpus-per-trial", "1", "--scorers", "", "--epochs", "1",
                 "--db", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path, env={"RAY_ADDRESS": "127.0.0.1:1"})
    assert_one_error_line(result, "no node of the Ray cluster has that much")
    assert "--gpus-per-trial 0" in result.stderr
    assert time.monotonic() - started < TIME_BOUND_S
    with sqlite3.connect(tmp_path / "s.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM nas_searches").fetchone() == (0,)


def test_resume_repairs_a_stored_impossible_request(tmp_path: Path) -> None:
    """2. A search stored with ``cpus_per_trial: 64`` (an older version let it start): resume fails clearly, and
    ``resume --cpus-per-trial 1`` trains it (one trial of one epoch), under a stale RAY_ADDRESS as well."""
    from nas.search import SearchConfig
    from nas.store import Store

    db = f"sqlite:///{tmp_path / 's.db'}"
    config = SearchConfig(budget=1, batch=1, scorers=(), seeds=(), train={"epochs": 1},
                          tune={"cpus_per_trial": 64, "grace_period": 1})
    with Store(db) as store:
        store.create_search("bad", space=config.space, dataset=config.dataset, config=config.to_dict(),
                            seed=config.seed, objectives=list(config.objectives), directions=config.directions)
    stale = {"RAY_ADDRESS": "127.0.0.1:1"}
    result = nas("search", "resume", "bad", "--db", db, cwd=tmp_path, env=stale)
    assert_one_error_line(result, "a trial asks for 64 CPU(s)")
    result = nas("search", "resume", "bad", "--db", db, "--cpus-per-trial", "1", cwd=tmp_path, env=stale,
                 timeout=2 * TIME_BOUND_S)
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(tmp_path / "s.db") as connection:
        assert connection.execute("SELECT status FROM nas_searches").fetchone() == ("finished",)
        assert connection.execute("SELECT COUNT(*) FROM nas_trials WHERE status IN ('ok', 'stopped')"
                                  ).fetchone() == (1,)


# ------------------------------------------------------------------------------- items 8, 9: SIGTERM, files


def _wait_for(predicate, timeout: float = TIME_BOUND_S, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _popen(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nas.cli.app", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _sigterm_once(process: subprocess.Popen, ready: Callable[[], bool], what: str) -> None:
    """Wait until ``ready()``, send SIGTERM, wait for the exit (killed if it outlives the test)."""
    try:
        _wait_for(ready, what=what)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIME_BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()


def test_sigterm_keeps_every_summary_row_of_sample(tmp_path: Path) -> None:
    """8. SIGTERM during ``nas sample``: exit 143, every written row is whole and its ONNX file loads."""
    from nas.export.onnx import load_onnx

    summary = tmp_path / "o" / "summary.jsonl"
    process = _popen("sample", "-n", "5000", "--input-shape", "1,8,8", "--out", str(tmp_path / "o"), cwd=tmp_path)
    _sigterm_once(process, lambda: summary.is_file() and summary.read_text().count("\n") >= 3, "three rows")
    assert process.returncode == 143
    rows = [json.loads(line) for line in summary.read_text().splitlines()]
    assert len(rows) >= 3
    for row in rows:
        load_onnx(tmp_path / "o" / row["file"])
    assert not list((tmp_path / "o").glob(".*.tmp"))  # no temporary file left behind


def test_sigterm_leaves_a_search_interrupted(tmp_path: Path) -> None:
    """9. SIGTERM to a running search: exit 143 and status ``interrupted`` (was ``failed``), ready to resume."""
    if not TABLE.is_file():
        pytest.skip(f"no NAS-Bench-Macro table at {TABLE}")
    db = tmp_path / "s.db"
    process = _popen("search", "run", "--name", "long", "--space", "nb-macro", "--evaluator", f"table:{TABLE}",
                     "--budget", "6000",
                     "--db", f"sqlite:///{db}", cwd=tmp_path)

    def some_trials() -> bool:
        try:
            return len(trial_rows(db)) >= 2
        except sqlite3.Error:
            return False

    _sigterm_once(process, some_trials, "two trials")
    assert process.returncode == 143
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT status FROM nas_searches").fetchone() == ("interrupted",)


def test_dashboard_hides_the_url_and_stops_its_server_on_sigterm(store_dir: Path, tmp_path: Path) -> None:
    """7 + 9. optuna-dashboard's command line holds no database URL, and SIGTERM stops it with the command."""
    import psutil

    from tests._dashboard import free_port, get_json

    port = free_port()
    process = _popen("search", "dashboard", "--db", f"sqlite:///{store_dir / 's.db'}", "--port", str(port),
                     cwd=tmp_path)
    try:
        def answers() -> bool:
            try:
                get_json(f"http://127.0.0.1:{port}/api/meta")
                return True
            except OSError:
                return process.poll() is not None

        _wait_for(answers, what="the dashboard")
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        children = psutil.Process(process.pid).children(recursive=True)
        assert children
        for child in children:
            assert not any("sqlite://" in part or "s.db" in part for part in child.cmdline())
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert process.returncode == 143
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive
    finally:
        if process.poll() is None:
            process.kill()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    """8. A write that fails half-way (here: the disk fills up) leaves the target as it was, and no temporary."""
    import errno

    from nas.errors import OutputError
    from nas.util.atomic import atomic_path

    target = tmp_path / "model.onnx"
    target.write_bytes(b"old model")
    with pytest.raises(OutputError, match="model.onnx: No space left on device"):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half of a new mo")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_bytes() == b"old model"
    assert list(tmp_path.iterdir()) == [target]


def test_zero_probability_alternatives_are_never_sampled(tmp_path: Path) -> None:
    """9. ``@ 0`` means never, even when it is the only alternative within the budget (then: no architecture)."""
    from search_spaces.exceptions import BudgetError
    from search_spaces.sampler import Limits
    from search_spaces.spaces import get_space

    grammar = tmp_path / "z.grammar"
    grammar.write_text("net -> linear(width = 4) | norm @ 0;\n")
    with pytest.raises(BudgetError):
        get_space("einspace", (1, 8, 8), limits=Limits(max_params=10), grammar_path=str(grammar))
    space = get_space("einspace", (1, 8, 8), grammar_path=str(grammar))
    assert {str(space.sample(seed)) for seed in range(20)} == {"linear[width=4]"}


def test_a_grammar_of_4000_rules_loads_in_bounded_time(tmp_path: Path) -> None:
    """6. Category inference and the finiteness/ambiguity checks are linear: 4,000 rules (112 s before) load
    well within the bound."""
    lines = [f"r{i} -> sequential(r{i + 1}, r{i + 1}) | linear(width in {{8, 16}}) | u{i};\nu{i} -> norm;"
             for i in range(4000)]
    (tmp_path / "big.grammar").write_text("\n".join(lines) + "\nr4000 -> identity;\n")
    result = nas("check-grammar", str(tmp_path / "big.grammar"), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "r4000 [module]" in result.stdout
