"""A search submitted as a Ray job (``nas search submit``) to a real 2-node Ray cluster on loopback
(tests/_ray_cluster.py: two raylets with 1 CPU each, free ports, stopped by the PIDs the test started): the job
server runs it, trials run on both nodes (the node id recorded per trial), every trial is in the store, the job id
is stored with the search, and ``nas search logs`` / ``stop`` find the job from the search's name. A second
search, submitted without ``--wait``, is stopped mid-run and ends ``interrupted``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nas.store import Store
from tests._ray_cluster import loopback_cluster

pytest.importorskip("aiohttp", reason="the Ray job server and Jobs SDK need ray[default]: pip install -e '.[cluster]'")
ROOT = Path(__file__).resolve().parents[3]
BUDGET = 6
CONFIG = {"space": "einspace", "dataset": "digits", "strategy": "random", "seeds": [], "budget": BUDGET,
          "batch": 2, "scorers": [], "seed": 11, "train": {"epochs": 2, "max_batches_per_epoch": 10},
          "tune": {"scheduler": "fifo", "cpus_per_trial": 1}}


def _nas(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli.app", *args]


def test_a_search_submitted_as_a_job_runs_on_both_nodes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    config = tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    db = f"sqlite:///{tmp_path / 'cluster.db'}"
    with loopback_cluster(2, tmp_path / "cluster", env) as cluster:
        done = subprocess.run(_nas("search", "submit", "--address", cluster.job_server, "--db", db, "--name", "multi",
                                   "--config", str(config), "--python", sys.executable, "--wait"),
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        job_id = done.stdout.splitlines()[0].strip()
        assert job_id.startswith("nas-multi-") and f"job {job_id}: SUCCEEDED" in done.stderr

        logs = subprocess.run(_nas("search", "logs", "multi", "--db", db), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert logs.returncode == 0 and "finished" in logs.stdout, logs.stderr[-2000:]
        stop = subprocess.run(_nas("search", "stop", "multi", "--db", db), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0 and "already ended (SUCCEEDED)" in stop.stdout, stop.stderr[-2000:]

        # a second search, stopped while it runs
        submitted = subprocess.run(_nas("search", "submit", "--address", cluster.job_server, "--db", db,
                                        "--name", "stopped", "--config", str(config), "--budget", "40",
                                        "--python", sys.executable),
                                   cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert submitted.returncode == 0, submitted.stderr[-3000:]
        second = submitted.stdout.splitlines()[0].strip()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # until it has trained something
            with Store(db) as store:
                if "stopped" in {s.name for s in store.list_searches()} and \
                        store.trials_of("stopped", status=("ok", "stopped", "failed")):
                    break
            time.sleep(1)
        stop = subprocess.run(_nas("search", "stop", "stopped", "--db", db), cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0 and "stop requested" in stop.stdout, stop.stdout + stop.stderr[-2000:]
        from nas.search.jobs import job_status

        while job_status(cluster.job_server, second) not in ("STOPPED", "FAILED", "SUCCEEDED"):
            assert time.monotonic() < deadline + 120
            time.sleep(1)
        assert job_status(cluster.job_server, second) == "STOPPED"

    with Store(db) as store:
        search = store.get_search("multi")
        assert search.status == "finished" and search.job_id == job_id
        assert search.job_address == cluster.job_server
        trials = store.trials_of("multi")
        assert len(trials) == BUDGET and all(t.status in ("ok", "stopped", "failed") for t in trials)
        assert all(t.node for t in trials)
        assert len({t.node for t in trials}) == 2  # trials ran on both nodes
        assert not any(t.gpu_fallback for t in trials)
        halted = store.get_search("stopped")
        assert halted.job_id == second and halted.status == "interrupted"
        assert len(store.trials_of("stopped", status=("ok", "stopped", "failed"))) < 40
