"""nas.search.cluster.ResourceWatch: the re-check that stops a search once no node left can host a trial (the
nodes are given as data here; tests/nas/search/test_nodes_leave.py does it on a real cluster)."""

from __future__ import annotations

from nas.errors import ResourceError
from nas.search.cluster import NodesLostError, ResourceWatch


def test_the_watch_stops_only_when_no_node_left_can_host_a_trial() -> None:
    nodes = [[{"CPU": 1.0}, {"CPU": 2.0}], [{"CPU": 1.0}, {"CPU": 2.0, "GPU": 0.0}], [{"CPU": 1.0}]]
    looks: list[int] = []

    def current() -> list[dict[str, float]]:
        looks.append(1)
        return nodes[min(len(looks) - 1, len(nodes) - 1)]

    watch = ResourceWatch(2, 0, every_s=0.0, nodes=current)
    assert watch.check() is None and watch.check() is None
    lost = watch.check()
    assert isinstance(lost, NodesLostError) and isinstance(lost, ResourceError)
    assert "a trial asks for 2 CPU(s) and 0 GPU(s)" in str(lost) and "at most 1 CPUs" in str(lost)
    assert lost.fix == ["--cpus-per-trial 1"]


def test_the_watch_looks_at_most_every_every_s_and_ignores_a_failing_look() -> None:
    calls: list[int] = []

    def failing() -> list[dict[str, float]]:
        calls.append(1)
        raise ConnectionError("GCS busy")

    watch = ResourceWatch(1, 0, every_s=3600.0, nodes=failing)
    assert watch.check() is None and calls == []  # the search's start has just checked: not due yet
    watch = ResourceWatch(1, 1, every_s=0.0, nodes=failing)
    assert watch.check() is None and calls == [1]  # a hiccup is not a lost node
    gpu = ResourceWatch(1, 1, every_s=0.0, nodes=lambda: [{"CPU": 8.0}])
    lost = gpu.check()
    assert lost is not None and lost.fix == ["--gpus-per-trial 0"]
