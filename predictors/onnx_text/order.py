"""Canonical order (rule 4): Kahn's algorithm with chain continuation first, then name- and file-order-independent
tie-breaks (Weisfeiler-Lehman colours of the downstream structure, then a hash of all of it)."""

from __future__ import annotations

import hashlib
import heapq
from itertools import accumulate

from predictors.onnx_text.analysis import Graph, file_topo_order

DOWNSTREAM_HOPS = 6         # depth of the downstream signature used to break ordering ties


def downstream_ranks(gr: Graph) -> list[int]:
    """Weisfeiler-Lehman colours of each node's downstream structure up to ``DOWNSTREAM_HOPS`` hops.

    Colours are ranks of sorted signatures, so comparing two colours compares the nested structures; they depend
    on nothing but ops, attributes, constants and wiring. A node's signature is its colour followed by, per
    output port, the graph outputs it feeds and the sorted (slot, colour) of its consumers; its new colour is
    the rank of its signature among all distinct signatures of the round.

    The rounds are computed class by class, which gives the same colours with much less work:

    * Colours are dense ranks and a signature starts with the old colour, so a node's new colour is its old
      colour, plus the number of extra parts the classes of lower colours split into, plus the rank of its
      signature within its own class.
    * A class of one node cannot split, so only classes of two or more nodes are kept (``multi``).
    * The members of a class had equal signatures under the previous colours (from the second round on).
      When a class splits, call its members outside its largest part *moved*. For a node none of whose
      consumers moved, the new colours of its consumers follow from their previous colours by one map (a class
      that did not split to its colour, a class that split to its largest part), so all such members of a
      class still have equal signatures: it is built once, for one of them. A class without a member that has
      a moved consumer does not split, and no signature of it is built.
    * When no class splits, every colour stays the same, and so it stays in all later rounds: the loop stops.
    """
    labels, args = gr.labels, gr.args
    n = len(labels)
    label_rank = {lab: r for r, lab in enumerate(sorted(set(labels)))}
    colour = [label_rank[lab] for lab in labels]
    n_colours = len(label_rank)
    multi: dict[int, list[int]] = {}
    for i, c in enumerate(colour):
        multi.setdefault(c, []).append(i)
    multi = {c: members for c, members in multi.items() if len(members) > 1}
    output_ports, consumers = gr.output_ports, gr.consumers
    dirty: set[int] | None = None   # nodes with a consumer that moved last round; None: all nodes

    def tail(i: int) -> tuple:
        """Node ``i``'s signature without its own colour. A consumer's (slot, colour) is written as the int
        ``slot * n + colour``, which orders like the pair (colours are below ``n``)."""
        out = []
        for outs, port in zip(output_ports[i], consumers[i]):
            if len(port) == 1:
                c, s = port[0]
                out.append((outs, (s * n + colour[c],)))
            else:
                out.append((outs, tuple(sorted([s * n + colour[c] for c, s in port]))))
        return tuple(out)

    for _ in range(DOWNSTREAM_HOPS):
        extra = [0] * n_colours             # [colour] -> how many more parts than one its class splits into
        splits: list[tuple[int, list[int], list[int]]] = []   # (colour, members, rank of each in its class)
        for c, members in multi.items():
            if dirty is None:
                tails = [tail(i) for i in members]
            elif dirty.isdisjoint(members):
                continue
            else:
                common = None               # the signature shared by the members without a moved consumer
                tails = []
                for i in members:
                    if i in dirty:
                        tails.append(tail(i))
                    else:
                        if common is None:
                            common = tail(i)
                        tails.append(common)
            distinct = sorted(set(tails))
            if len(distinct) > 1:
                rank = {t: r for r, t in enumerate(distinct)}
                extra[c] = len(distinct) - 1
                splits.append((c, members, [rank[t] for t in tails]))
        if not splits:
            break
        shift = list(accumulate(extra, initial=0))
        new = [c + shift[c] for c in colour]
        next_multi = {c + shift[c]: members for c, members in multi.items() if not extra[c]}
        moved: list[int] = []
        for c, members, ranks in splits:
            parts: dict[int, list[int]] = {}
            for i, r in zip(members, ranks):
                parts.setdefault(r, []).append(i)
            largest = max(parts.values(), key=len)
            for r, part in parts.items():
                for i in part:
                    new[i] += r
                if len(part) > 1:
                    next_multi[c + shift[c] + r] = part
                if part is not largest:
                    moved.extend(part)
        colour, n_colours, multi = new, n_colours + shift[-1], next_multi
        dirty = {a[1] for i in moved for a in args[i] if a[0] == "v"}
    return colour


def downstream_hashes(gr: Graph, topo: list[int]) -> list[int]:
    """A stable 64-bit hash of each node's whole downstream structure (label, consumers and their slots, graph
    outputs, recursively). Compared only after the bounded, order-preserving ranks of
    :func:`downstream_ranks` tie, to split nodes whose difference lies farther downstream."""
    labels, consumers, output_ports = gr.labels, gr.consumers, gr.output_ports
    h = [0] * len(labels)
    for i in reversed(topo):
        parts = [labels[i]]
        for p, port in enumerate(consumers[i]):
            parts.append(f"|{p}:{output_ports[i][p]}:" + ",".join(sorted([f"{s}.{h[c]}" for c, s in port])))
        h[i] = int.from_bytes(hashlib.blake2b("".join(parts).encode(), digest_size=8).digest(), "big")
    return h


def chain_successors(gr: Graph) -> list[int | None]:
    """For each node, the node that continues its chain (rule 5), or None."""
    outputs, active, consumers, output_ports = gr.outputs, gr.active, gr.consumers, gr.output_ports
    single = [len(outs) == 1 and k == 1 for outs, k in zip(outputs, active)]
    succ: list[int | None] = [None] * len(single)
    for i, is_single in enumerate(single):
        if is_single and not output_ports[i][0] and len(consumers[i][0]) == 1:
            m = consumers[i][0][0][0]
            if single[m]:
                succ[i] = m
    return succ


def canonical_order(gr: Graph) -> tuple[list[int], list[int | None]]:
    """Kahn's algorithm with chain continuation first, then a name- and file-order-independent key.

    Among the ready nodes the smallest key ``(-latest, label, input refs, downstream colour, whole downstream
    hash, file position)`` goes first. The heap holds the key without colour and hash: when several ready nodes
    tie on everything before them, they are taken off the heap together, and the colour, then the hash decide.
    Ties are rare outside repeated branches, so the colours (:func:`downstream_ranks`) are computed the first
    time one occurs, and the hashes (:func:`downstream_hashes`) the first time colours tie. A cycle leaves
    nodes that never become ready, and :func:`file_topo_order` then raises the error. Returns the order and
    each node's chain successor (:func:`chain_successors`).
    """
    succ = chain_successors(gr)
    colour: list[int] = []
    whole: list[int] = []
    labels, args, consumers = gr.labels, gr.args, gr.consumers
    n = len(labels)
    indeg = gr.indegree[:]
    step = [0] * n
    done = [False] * n
    heap: list[tuple] = []
    heappush, heappop = heapq.heappush, heapq.heappop

    def push(i: int) -> None:
        refs = []
        latest = -2
        for a in args[i]:
            kind = a[0]
            if kind == "v":
                s = step[a[1]]
                refs.append((2, s, a[2]))
                latest = max(latest, s)
            elif kind == "i":
                refs.append((1, a[1], 0))
                latest = max(latest, -1)
            else:
                refs.append((0, 0, 0))
        heappush(heap, (-latest, labels[i], tuple(refs), i))

    def pop() -> int:
        while True:
            if not heap:  # nodes are left but none is ready: they lie on or after a cycle
                file_topo_order(gr)  # raises the error that says so
            entry = heappop(heap)
            i = entry[3]
            if not done[i]:
                break
        if heap:
            top = heap[0]
            if top[0] == entry[0] and top[1] == entry[1] and top[2] == entry[2]:
                return tie_break(entry)
        return i

    def tie_break(entry: tuple) -> int:
        key = entry[:3]
        tied = [entry[3]]
        while heap and heap[0][:3] == key:
            j = heappop(heap)[3]
            if not done[j]:
                tied.append(j)
        if len(tied) == 1:
            return tied[0]
        if not colour:
            colour.extend(downstream_ranks(gr))
        lowest = min(colour[j] for j in tied)
        best_colour = [j for j in tied if colour[j] == lowest]
        if len(best_colour) == 1:
            best = best_colour[0]
        else:
            if not whole:
                whole.extend(downstream_hashes(gr, file_topo_order(gr)))  # (raises on a cycle)
            best = min(best_colour, key=lambda j: (whole[j], j))
        for j in tied:
            if j != best:
                heappush(heap, (*key, j))
        return best

    for i in range(n):
        if indeg[i] == 0:
            push(i)
    order: list[int] = []
    forced: int | None = None
    while len(order) < n:
        if forced is not None:
            i, forced = forced, None
        else:
            i = pop()
        done[i] = True
        step[i] = len(order)
        order.append(i)
        for port in consumers[i]:
            for c, _ in port:
                indeg[c] -= 1
                if indeg[c] == 0:
                    push(c)
        forced = succ[i]
    return order, succ

