"""Worst-case stack depth from GCC's call-graph files (-fcallgraph-info=su).

GCC writes one ``.ci`` file per object in VCG syntax: a node per function
with its frame size ("40 bytes (static)"), and an edge per direct call. The
deepest path from the entry function, frame sizes summed, is the stack the
program needs. Compiler helpers called at the RTL level (libgcc's 64-bit
shifts, say) do not appear in the graph: ``HELPER_ALLOWANCE`` covers them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# libgcc helpers (__aeabi_llsl, __ashrdi3, ...) are leaf functions using at
# most a few saved registers; the margin below covers any one of them.
HELPER_ALLOWANCE = 32
INDIRECT_CALL = "__indirect_call"

_NODE = re.compile(r'node:\s*\{\s*title:\s*"([^"]+)"\s*label:\s*"([^"]*)"')
_EDGE = re.compile(r'edge:\s*\{\s*sourcename:\s*"([^"]+)"\s*targetname:\s*"([^"]+)"')
_FRAME = re.compile(r"\\n(\d+) bytes \((static|dynamic|dynamic,bounded)\)")


@dataclass
class CallGraph:
    frames: dict[str, int] = field(default_factory=dict)  # function -> frame bytes
    qualifiers: dict[str, str] = field(default_factory=dict)  # function -> static|dynamic...
    calls: dict[str, set[str]] = field(default_factory=dict)

    def add_file(self, path: Path) -> None:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        for title, label in _NODE.findall(text):
            frame = _FRAME.search(label)
            if frame:
                self.frames[title] = max(self.frames.get(title, 0), int(frame.group(1)))
                self.qualifiers[title] = frame.group(2)
        for source, target in _EDGE.findall(text):
            self.calls.setdefault(source, set()).add(target)


@dataclass(frozen=True)
class StackEstimate:
    bytes: int  # deepest path plus HELPER_ALLOWANCE
    path: tuple[str, ...]  # the deepest call chain, entry first
    caveats: tuple[str, ...]  # why the estimate may be low (empty: it is an upper bound)


def load_call_graph(files) -> CallGraph:
    graph = CallGraph()
    for path in files:
        graph.add_file(path)
    return graph


def estimate_stack(graph: CallGraph, entry: str) -> StackEstimate:
    """Deepest stack from ``entry``; recursion and indirect calls are
    reported as caveats instead of being guessed."""
    caveats: set[str] = set()
    depth: dict[str, tuple[int, tuple[str, ...]]] = {}

    def visit(function: str, active: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
        if function in depth:
            return depth[function]
        if function in active:
            caveats.add(f"recursion through {function}")
            return 0, ()
        if function == INDIRECT_CALL:
            caveats.add("an indirect call (function pointer) whose target is not known")
            return 0, ()
        if function not in graph.frames and not function.startswith("__"):
            # "__" names are compiler helpers: HELPER_ALLOWANCE covers them.
            caveats.add(f"{function} has no stack information (not compiled with the image)")
        if graph.qualifiers.get(function, "static") != "static":
            caveats.add(f"{function} has a dynamic stack frame")
        deepest, chain = 0, ()
        for callee in sorted(graph.calls.get(function, ())):
            size, sub = visit(callee, active + (function,))
            if size > deepest:
                deepest, chain = size, sub
        result = (graph.frames.get(function, 0) + deepest, (function,) + chain)
        depth[function] = result
        return result

    if entry not in graph.frames:
        raise ValueError(f"entry function {entry} not found in the call graph")
    total, path = visit(entry, ())
    return StackEstimate(total + HELPER_ALLOWANCE, path, tuple(sorted(caveats)))
