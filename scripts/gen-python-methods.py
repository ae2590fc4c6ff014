#!/usr/bin/env python3
"""Write the analysis methods of `safetyscope.Dataset` from the core's
registry of analyses: one method per analysis, its keywords the analysis's
parameters and options, its docstring their docs and defaults.

usage: gen-python-methods.py REGISTRY.json [--check]
  REGISTRY.json: the output of `safetyscope options` (or `-` for stdin).
  Rewrites the block between the markers in python/python/safetyscope/__init__.py;
  with --check, exits 1 if the block is not what the registry gives.

Every keyword defaults to None: "not given", so the core's default applies.
The defaults live in the core only; the docstrings quote them.
"""

from __future__ import annotations

import json
import pathlib
import sys
import textwrap
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET = ROOT / "python" / "python" / "safetyscope" / "__init__.py"
BEGIN = "    # -- analyses (generated from the registry by scripts/gen-python-methods.py; do not edit) --\n"
END = "    # -- end of the generated analyses --\n"
# Analyses whose method is written by hand: it reads a file a path names.
HAND_WRITTEN = {"targets"}
KEYWORDS = {"from": "from_"}


def py_type(kind: dict[str, Any]) -> str:
    t = kind["type"]
    if t == "bool":
        return "bool"
    if t == "integer":
        return "int"
    if t == "number":
        return "float"
    if t in ("text", "choice"):
        return "str"
    if t == "list":
        inner = py_type(kind["of"])
        return f"Union[str, Sequence[{inner}]]" if inner == "str" else f"Sequence[{inner}]"
    if t == "map":
        return "Mapping[str, float]"
    return "Any"


def describe(kind: dict[str, Any]) -> str:
    t = kind["type"]
    if t == "choice":
        return " | ".join(f'``"{v}"``' for v in kind["of"])
    if t == "list":
        return "list of " + describe(kind["of"])
    if t == "map":
        return "mapping of name to number"
    if t == "json":
        return "structure"
    return t


def default_text(v: Any) -> str:
    if v is None:
        return "none"
    return "``" + json.dumps(v, ensure_ascii=False) + "``"


def method(a: dict[str, Any]) -> str:
    params = [(p["name"], "bool" if p["choices"] == ["true", "false"] else "str") for p in a["params"]]
    options = [(o["name"], py_type(o["kind"])) for o in a["options"]]
    args = [f"{KEYWORDS.get(n, n)}: Optional[{t}] = None" for n, t in params + options]
    doc = [a["summary"], "", *textwrap.wrap(a["about"], 76)]
    if a["params"] or a["options"]:
        doc += ["", "Keywords (None: the default):", ""]
    for p in a["params"]:
        doc += textwrap.wrap(
            f"- ``{p['name']}`` ({' | '.join(p['choices'])}, default ``{p['default']}``): {p['doc']}",
            76,
            subsequent_indent="  ",
        )
    for o in a["options"]:
        doc += textwrap.wrap(
            f"- ``{KEYWORDS.get(o['name'], o['name'])}`` ({describe(o['kind'])}, default "
            f"{default_text(o['default'])}): {o['doc']}",
            76,
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    names = [KEYWORDS.get(n, n) for n, _ in params + options]
    body = ", ".join(f"{n}={n}" for n in names)
    lines = [f"    def {a['python']}(", "        self,"]
    if args:
        lines.append("        *,")
        lines += [f"        {x}," for x in args]
    lines.append("    ) -> Result:")
    lines.append('        """' + doc[0])
    lines += [("        " + d) if d else "" for d in doc[1:]]
    lines.append('        """')
    lines.append(f'        return self.run("{a["name"]}", {body})' if body else f'        return self.run("{a["name"]}")')
    return "\n".join(lines) + "\n"


def render(registry: list[dict[str, Any]]) -> str:
    return "\n".join(method(a) for a in registry if a["name"] not in HAND_WRITTEN)


def main() -> int:
    source = sys.argv[1]
    text = sys.stdin.read() if source == "-" else pathlib.Path(source).read_text()
    block = render(json.loads(text))
    current = TARGET.read_text()
    a = current.index(BEGIN) + len(BEGIN)
    b = current.index(END)
    if "--check" in sys.argv:
        if current[a:b] != block:
            print(f"{TARGET} is stale: run `make python-methods`")
            return 1
        return 0
    TARGET.write_text(current[:a] + block + current[b:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
