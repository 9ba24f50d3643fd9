"""Architecture pictures and ``nas show``: real graphs, real Graphviz, the real CLI (no mocks).

The search-level parts (report in Chromium, pictures in optuna-dashboard) are in ``tests/nas/viz/test_report.py``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from nas.candidate import build_candidate
from nas.export.onnx import save_onnx
from nas.ir.build import build_graph
from nas.viz.picture import PictureError, collapse_chains, op_label, picture_of, render_picture, write_picture
from nas.viz.report import pareto_mask
from nas.viz.source import from_onnx, from_string, resolve
from search_spaces.spaces import Space

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed "
                                                                  "(Debian: apt-get install graphviz)")
RESIDUAL = ("(sequential linear[width=32] (sequential (branching clone[k=2] (sequential linear[width=32] leaky_relu) "
            "identity add) norm))")
MACRO = "02012100"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli.app", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_chains_collapse_but_forks_and_merges_stay() -> None:
    view = from_string(RESIDUAL, input_shape=(3, 8, 8))
    graph = view.graph
    chains = collapse_chains(graph)
    # every IR node is drawn exactly once, in topological order inside each box
    assert sorted(n for c in chains for n in c) == list(range(graph.g.number_of_nodes()))
    assert all(c == sorted(c) for c in chains)
    ops = {n: graph.g.nodes[n]["op"] for n in graph.g.nodes}
    for chain in chains:
        if len(chain) > 1:  # a chain reads one value and each op but the last is read by the next only
            assert all(ops[n] not in ("input", "output", "add", "concat", "matmul") for n in chain)
            for u, v in zip(chain, chain[1:]):
                assert [src for src, _ in graph.g.nodes[v]["inputs"]] == [u]
                assert list(graph.g.successors(u)) == [v]
    (add,) = [n for n, op in ops.items() if op == "add"]
    assert [add] in chains  # merges keep a box of their own
    picture = picture_of(graph)
    assert len(picture.blocks) == len(chains) < graph.g.number_of_nodes()
    # the residual's two branches reach the add: two edges into its box, both labelled with the shape
    into_add = [e for e in picture.edges if e.dst == f"b{add}"]
    assert len(into_add) == 2 and {e.label for e in into_add} == {"3x8x32"}
    # linear -> (linear, leaky_relu) -> add -> (batchnorm, pool, head linear): 3 chains collapsed
    assert [len(c) for c in chains] == [1, 1, 2, 1, 3, 1]


def test_op_labels_carry_the_key_parameters() -> None:
    assert op_label("conv2d", {"kernel": 3, "stride": 2, "padding": 1, "in_channels": 16, "out_channels": 32,
                               "groups": 1, "bias": False}) == "conv2d 3x3/2 16→32"
    assert op_label("conv2d", {"kernel": 5, "stride": 1, "padding": 2, "in_channels": 64, "out_channels": 64,
                               "groups": 64, "bias": False}) == "conv2d 5x5 64→64 depthwise"
    assert op_label("linear", {"in_features": 64, "out_features": 10}) == "linear 64→10"
    assert op_label("split", {"dim": 1, "k": 4}) == "split 4 on dim 1"


@needs_dot
def test_svg_and_png_by_extension(tmp_path: Path) -> None:
    view = from_string(MACRO, space="nb-macro")
    svg = write_picture(view.graph, tmp_path / "a.svg").read_bytes()
    png = write_picture(view.graph, tmp_path / "a.PNG").read_bytes()
    assert b"<svg" in svg and png.startswith(b"\x89PNG\r\n\x1a\n")
    text = html.unescape(svg.decode())
    # the key parameters and shapes are in the picture: the depthwise 5x5 conv, the stem's output, the head
    assert "conv2d 5x5 384→384 depthwise" in text and "→ 32x32x32" in text and "linear 1280→10" in text
    # the picture's boxes are fewer than the ops (chains collapsed) and every box is drawn
    assert text.count('class="node"') == len(picture_of(view.graph).blocks) < sum(1 for _ in view.graph.op_nodes())
    with pytest.raises(PictureError, match=r"\.svg or \.png"):
        write_picture(view.graph, tmp_path / "a.jpg")
    with pytest.raises(PictureError, match="unsupported picture format"):
        render_picture(view.graph, "gif")


@needs_dot
def test_a_50_node_einspace_network_is_drawn_readably(spaces: dict[str, Space]) -> None:
    sp = spaces["image3x32x32"]
    for seed in range(300):  # the first sampled network with 40-60 IR nodes
        graph = build_graph(sp, sp.sample(seed=seed), 10)
        if 40 <= graph.g.number_of_nodes() <= 60:
            break
    else:
        pytest.fail("no 40-60 node einspace network in 300 samples")
    svg = render_picture(graph, "svg").decode()
    picture = picture_of(graph)
    assert svg.count('class="node"') == len(picture.blocks)
    assert svg.count('class="edge"') == len(picture.edges)
    # every edge of the drawing is labelled with a tensor shape like 3x16x32 (a port prefix for split outputs)
    labels = [e.label for e in picture.edges]
    assert all(re.fullmatch(r"(\[\d+\] )?\d+(x\d+)*", label) for label in labels)
    width, height = (float(v) for v in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    assert width < 4000 and height < 4000  # laid out as a DAG, not one endless row or column


def test_from_onnx_rebuilds_the_graph_and_refuses_foreign_files(tmp_path: Path, spaces: dict[str, Space]) -> None:
    sp = spaces["nb-macro"]
    cand = build_candidate(sp, sp.from_arch(MACRO), 10)
    path = save_onnx(cand.onnx_model, tmp_path / "m.onnx")
    view = from_onnx(path)
    assert view.hash == cand.hash and view.arch == MACRO and view.summary()["params"] == cand.params
    assert resolve(str(path)).hash == cand.hash
    foreign = onnx.ModelProto()
    foreign.CopyFrom(cand.onnx_model)
    del foreign.metadata_props[:]
    save_onnx(foreign, tmp_path / "foreign.onnx")
    with pytest.raises(PictureError, match="no space and derivation metadata"):
        from_onnx(tmp_path / "foreign.onnx")


def test_pareto_mask() -> None:
    points = [(0.9, 100.0), (0.8, 50.0), (0.7, 60.0), (0.9, 120.0), (0.95, 500.0)]
    assert pareto_mask(points, ["maximize", "minimize"]) == [True, True, False, False, True]


# ------------------------------------------------------------------------------------------------ the CLI


@needs_dot
def test_nas_show_prints_a_summary_and_writes_the_picture(tmp_path: Path) -> None:
    out = tmp_path / "pics" / "macro.png"
    result = _cli("show", MACRO, "--space", "nb-macro", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    for field in ("params:      890,666", "FLOPs:", "depth:", "input:       3x32x32   output: 10", "ops:"):
        assert field in result.stdout
    result = _cli("show", RESIDUAL, "--input-shape", "3,8,8", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["space"] == "einspace" and data["input_shape"] == [3, 8, 8] and data["output_shape"] == [10]
    assert data["op_histogram"]["add"] == 1 and data["picture"] is None


def test_nas_show_bad_input_is_one_error_line(tmp_path: Path) -> None:
    from nas.store import Store

    Store(f"sqlite:///{tmp_path / 'empty.db'}").close()  # a store with no architectures (`show --db` only reads)
    for args, message in ((["(sequential linear[width=32] leaky)"], "'leaky' is not an alternative"),
                          ([MACRO, "--space", "nb-macro", "--out", str(tmp_path / "x.jpg")], ".svg or .png"),
                          ([str(tmp_path / "missing.onnx")], "no such file"),
                          (["abcdef12", "--db", f"sqlite:///{tmp_path / 'empty.db'}"], "no architecture with hash"),
                          (["abcdef12", "--db", f"sqlite:///{tmp_path / 'missing.db'}"], "no store at")):
        result = _cli("show", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ") and message in result.stderr.splitlines()[0], result.stderr
        assert "Traceback" not in result.stderr
