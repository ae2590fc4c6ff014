#!/usr/bin/env python3
"""Check the layers of a crate's modules: no import cycles, no import of a
higher layer, no `crate::` path that names no module file.

usage: check-layers.py SRC_DIR        exit 0 when clean, 1 with the findings

Every `crate::a::b::…` path in a module (outside its `#[cfg(test)]` tests
module, doc comments included) is an edge to the deepest module file it
names. The layers are the top-level modules in the order of LAYERS; a module
may import its own layer's modules (without cycles) and the layers before
it. Inside `analysis`, ANALYSIS_ORDER does the same for the concerns.
"""

from __future__ import annotations

import pathlib
import re
import sys

# Lowest first. Modules not listed (lib.rs, the crate root) may import all.
LAYERS = [
    "util",
    "model",
    "io",
    "session",
    "charts",
    "analysis",
    "api",
    "generate",
    "bundle",
    "job",
]
# Inside `analysis`: a concern may import those before it in its own list.
ANALYSIS_ORDER = {
    "followup": 0,
    "kpis": 0,
    "temporal": 0,
    "spatial": 1,
    "forecast": 2,
    "review": 3,
}
ANALYSIS_MAY_IMPORT = {
    "spatial": {"followup"},
    "forecast": {"spatial"},
    "review": {"followup", "kpis", "spatial", "temporal", "forecast"},
}

PATH = re.compile(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
GROUP = re.compile(r"crate::\{([^;]*?)\}", re.S)


def module_of(src: pathlib.Path, f: pathlib.Path) -> tuple[str, ...]:
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+tests", text)
    return text[: cut.start()] if cut else text


def edges_of(src: pathlib.Path) -> tuple[dict, dict, list[str]]:
    files = sorted(src.rglob("*.rs"))
    mods = {module_of(src, f): f for f in files}
    edges: dict[tuple[str, ...], dict[tuple[str, ...], int]] = {m: {} for m in mods}
    unresolved: list[str] = []
    for m, f in mods.items():
        text = strip_tests(f.read_text(errors="replace"))
        paths = []
        for line_no, line in enumerate(text.split("\n"), 1):
            for p in PATH.finditer(line):
                paths.append((p.group(1), line_no))
        for g in GROUP.finditer(text):
            line_no = text[: g.start()].count("\n") + 1
            for item in re.split(r",(?![^{]*\})", g.group(1)):
                item = item.strip().split("{")[0].rstrip(":").strip()
                if item:
                    paths.append((item.split(" as ")[0], line_no))
        for p, line_no in paths:
            segs = p.split("::")
            target = None
            for n in range(len(segs), 0, -1):
                if tuple(segs[:n]) in mods:
                    target = tuple(segs[:n])
                    break
            if target is None:
                # `crate::Error`-style items re-exported at the root are fine
                # only from the root itself.
                if m != ():
                    unresolved.append(f"{f.relative_to(src)}:{line_no}: `crate::{p}` names no module file")
                continue
            if target != m and target != ():
                edges[m].setdefault(target, line_no)
    return mods, edges, unresolved


def rank(m: tuple[str, ...]) -> int | None:
    if not m or m[0] not in LAYERS:
        return None
    return LAYERS.index(m[0])


def layer_violations(mods: dict, edges: dict) -> list[str]:
    out = []
    for a, targets in edges.items():
        for b, line in targets.items():
            ra, rb = rank(a), rank(b)
            if ra is None or rb is None:
                continue
            where = f"{'/'.join(a)} (line {line}) imports {'/'.join(b)}"
            if rb > ra:
                out.append(f"{where}: layer `{b[0]}` is above `{a[0]}`")
            elif a[0] == b[0] == "analysis" and len(a) > 1 and len(b) > 1 and a[1] != b[1]:
                if b[1] not in ANALYSIS_MAY_IMPORT.get(a[1], set()):
                    out.append(f"{where}: analysis `{a[1]}` may not import analysis `{b[1]}`")
    return out


def cycles(edges: dict) -> list[list[tuple[str, ...]]]:
    index: dict = {}
    low: dict = {}
    stack: list = []
    on: set = set()
    comps: list = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return comps


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "crates/safetyscope-core/src")
    mods, edges, unresolved = edges_of(src)
    problems = list(unresolved)
    problems += layer_violations(mods, edges)
    for c in cycles(edges):
        problems.append("import cycle: " + ", ".join("/".join(m) for m in c))
    n_edges = sum(len(t) for t in edges.values())
    for p in problems:
        print(p)
    print(f"layers: {len(mods)} modules, {n_edges} edges, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
