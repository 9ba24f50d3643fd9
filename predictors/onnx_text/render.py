"""Rendering (rules 2, 5 and 7 and the variants): the lines of a canonically ordered graph, with value ids
absolute (``chain``), relative (``relative``), or relative with repeats collapsed (``compact``)."""

from __future__ import annotations

from predictors.onnx_text.analysis import Graph, literal

#: The text variants: ``chain`` (value ids ``V1, V2, ...``), ``relative`` (the same lines with relative ids
#: ``V-k`` / ``V+k``, one line per chain: what the predictor reads, so that a line says where its inputs come
#: from) and ``compact`` (relative ids, back-to-back repeats collapsed into ``n x [...]``).
VARIANTS: tuple[str, ...] = ("chain", "compact", "relative")

MAX_PERIOD = 32             # longest repeated block the compact variant collapses

# A line is a list of pieces: a string (written as is), an int k (a use of value k, ``Vk``) or a tuple
# (k, shape) (the definition of value k, ``Vk:shape``). Only the variants' value ids differ.
Line = list


def build_lines(gr: Graph, order: list[int], succ: list[int | None], shapes: dict[str, str],
           graph_output_names: list[str]) -> list[Line]:
    """The lines of the text (rules 2, 5 and 7), with value uses and definitions left as ids (see ``Line``).

    Adjacent literal text is merged into one string, so a line alternates strings and value pieces.
    """
    get_shape = shapes.get
    input_names = ["Input"] if len(gr.graph_inputs) == 1 else [f"Input{k + 1}" for k in range(len(gr.graph_inputs))]
    input_text = [f"{input_names[k]}:{get_shape(name, '*')}" for k, name in enumerate(gr.graph_inputs)]
    ops, attrs, args, outputs = gr.ops, gr.attrs, gr.args, gr.outputs
    value_ids: list[list[int]] = [[0] * len(outs) for outs in outputs]   # [node][port] -> id once written
    n_values = 0
    lines: list[Line] = []
    pos = 0
    n = len(order)
    while pos < n:
        # the first node of a chain, with all its arguments
        first = order[pos]
        line: Line = []
        text = ops[first] + "("
        for slot, a in enumerate(args[first]):
            if slot:
                text += ", "
            kind = a[0]
            if kind == "v":
                line.append(text)
                line.append(value_ids[a[1]][a[2]])
                text = ""
            else:
                text += input_text[a[1]] if kind == "i" else a[1] if kind == "c" else "None"
        text += ")" + attrs[first]
        # the nodes that continue the chain: their only activation argument is the previous node's output
        last = first
        pos += 1
        while pos < n and succ[last] == order[pos]:
            i = order[pos]
            (slot,) = [s for s, a in enumerate(args[i]) if a[0] == "v" and a[1] == last]
            pieces = ["_" if s == slot else literal(a) for s, a in enumerate(args[i])]
            if slot == 0:
                del pieces[0]
            text += " --> " + ops[i] + ("(" + ", ".join(pieces) + ")" if pieces or slot else "") + attrs[i]
            last = i
            pos += 1
        # the values the chain defines
        if outputs[last]:
            text += " --> "
            ids = value_ids[last]
            for p, name in enumerate(outputs[last]):
                if p:
                    text += ", "
                if not name:
                    text += "None"
                    continue
                n_values += 1
                ids[p] = n_values
                line.append(text)
                line.append((n_values, get_shape(name, "*")))
                text = ""
        line.append(text)
        lines.append(line)
    for a, name in zip(gr.graph_outputs, graph_output_names):
        kind = a[0]
        tail = ") --> " + get_shape(name, "*")
        if kind == "v":
            lines.append(["Output(", value_ids[a[1]][a[2]], tail])
        else:
            lines.append(["Output(" + (input_text[a[1]] if kind == "i" else literal(a)) + tail])
    return lines


def render_absolute(line: Line) -> str:
    return "".join([p if p.__class__ is str else f"V{p}" if p.__class__ is int else f"V{p[0]}:{p[1]}"
                    for p in line])


def render_relative(line: Line, defined_before: int) -> str:
    parts = []
    for p in line:
        if isinstance(p, str):
            parts.append(p)
        elif isinstance(p, int):
            parts.append(f"V-{defined_before + 1 - p}")
        else:
            parts.append(f"V+{p[0] - defined_before}:{p[1]}")
    return "".join(parts)


def compress(lines: list[str], indent: str = "") -> list[str]:
    """Collapse back-to-back repeats of blocks of 1..``MAX_PERIOD`` lines (see the module docstring)."""
    intern: dict[str, int] = {}
    code = [intern.setdefault(s, len(intern)) for s in lines]
    n = len(code)
    memo: dict[int, tuple[int, int]] = {}

    def best(i: int) -> tuple[int, int]:
        """(period, repeats) of the repeat starting at ``i`` that saves the most lines; (1, 1) if none."""
        if i in memo:
            return memo[i]
        found = (1, 1)
        for p in range(1, min(MAX_PERIOD, (n - i) // 2) + 1):
            block = code[i:i + p]
            r = 1
            while i + (r + 1) * p <= n and code[i + r * p:i + (r + 1) * p] == block:
                r += 1
            if r > 1 and p * (r - 1) > found[0] * (found[1] - 1):
                found = (p, r)
        memo[i] = found
        return found

    out: list[str] = []
    i = 0
    while i < n:
        p, r = best(i)
        saving = p * (r - 1)
        if r > 1 and not any(q * (s - 1) > saving for q, s in (best(j) for j in range(i + 1, i + p * r))):
            if p == 1:
                out.append(f"{indent}{r} x [{lines[i]}]")
            else:
                out.append(f"{indent}{r} x [")
                out.extend(compress(lines[i:i + p], indent + "  "))
                out.append(f"{indent}]")
            i += p * r
        else:
            out.append(indent + lines[i])
            i += 1
    return out


def relative_lines(lines: list[Line]) -> list[str]:
    """Every line with relative value ids (see the ``compact`` variant in the package docstring), uncollapsed."""
    relative = []
    defined = 0
    for line in lines:
        relative.append(render_relative(line, defined))
        defined += sum(1 for p in line if isinstance(p, tuple))
    return relative


def render(lines: list[Line], variant: str) -> list[str]:
    """The text lines of ``variant`` (one of :data:`VARIANTS`)."""
    if variant == "chain":
        return [render_absolute(line) for line in lines]
    relative = relative_lines(lines)
    return relative if variant == "relative" else compress(relative)
