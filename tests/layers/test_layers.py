"""The core's modules form layers without cycles (scripts/check-layers.py),
and the check fails when a back-edge is planted."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check-layers.py"
SRC = ROOT / "crates" / "safetyscope-core" / "src"


def run(src: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), str(src)], capture_output=True, text=True)


def test_the_core_has_no_cycles_and_no_upward_imports() -> None:
    r = run(SRC)
    assert r.returncode == 0, r.stdout
    assert r.stdout.strip().endswith("0 problems")


def plant(tmp_path: pathlib.Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy)
    target = copy / module
    target.write_text(line + "\n" + target.read_text())
    return run(copy)


def test_a_planted_back_edge_fails(tmp_path: pathlib.Path) -> None:
    # util is the lowest layer: importing an analysis from it is a back-edge
    # and closes a cycle (risk -> util::columns -> risk).
    r = plant(tmp_path, "util/columns.rs", "use crate::analysis::spatial::risk::RiskOptions;")
    assert r.returncode == 1
    assert "util/columns (line 1) imports analysis/spatial/risk: layer `analysis` is above `util`" in r.stdout
    assert "import cycle:" in r.stdout and "util/columns" in r.stdout


def test_an_import_between_analyses_outside_the_order_fails(tmp_path: pathlib.Path) -> None:
    r = plant(tmp_path, "analysis/kpis/compute.rs", "use crate::analysis::temporal::patterns::PatternOptions;")
    assert r.returncode == 1
    assert "analysis `kpis` may not import analysis `temporal`" in r.stdout


def test_a_path_through_a_public_alias_fails(tmp_path: pathlib.Path) -> None:
    # `crate::risk` is the public alias of analysis::spatial::risk: inside the
    # crate it would hide the edge from the check.
    r = plant(tmp_path, "model/options.rs", "use crate::risk::RiskOptions;")
    assert r.returncode == 1
    assert "model/options.rs:1: `crate::risk` names no module file" in r.stdout
