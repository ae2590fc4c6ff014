"""Every analysis of the registry, run with an empty options object through
the four surfaces — the command line, Python, WASM under node and a job
file — gives the same result, and every surface lists the registry's
options with its defaults."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import safetyscope

REGISTRY = safetyscope.analyses()
NAMES = [a["name"] for a in REGISTRY]
HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def wasm(pkg: pathlib.Path, sample: pathlib.Path) -> dict[str, Any]:
    r = subprocess.run(
        ["node", str(HERE / "run_wasm.mjs"), str(pkg), str(sample), *NAMES],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out: dict[str, Any] = json.loads(r.stdout)
    out["results"] = {k: json.loads(v) for k, v in out["results"].items()}
    return out


@pytest.fixture(scope="module")
def job(cli: str, sample: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("job")
    lines = [f'data = "{sample}"', 'out = "out"', ""]
    for name in NAMES:
        lines += ["[[analysis]]", f'name = "{name}"', f'kind = "{name}"', 'formats = ["json", "parquet"]', ""]
    (d / "job.toml").write_text("\n".join(lines))
    # The job names the shared sample by its absolute path: allowed explicitly.
    r = subprocess.run([cli, "--allow-outside", "run", str(d / "job.toml")], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return d / "out"


def cli_rows(cli: str, sample: pathlib.Path, name: str, tmp: pathlib.Path) -> tuple[str, pa.Table]:
    text = subprocess.run(
        [cli, name, str(sample), "--format", "json"], capture_output=True, text=True, timeout=600
    )
    assert text.returncode == 0, text.stderr
    out = tmp / f"{name}.parquet"
    r = subprocess.run([cli, name, str(sample), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return text.stdout.strip(), pq.read_table(out)


@pytest.mark.parametrize("name", NAMES)
def test_the_four_surfaces_give_one_result(
    name: str, cli: str, sample: pathlib.Path, wasm: dict[str, Any], job: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    cli_json, cli_table = cli_rows(cli, sample, name, tmp_path)
    # The command line and the job write the same JSON text.
    assert (job / f"{name}.json").read_text().strip() == cli_json
    # WASM: the same rows; its math library (exp, ln) may differ from the
    # native one in the last bits, so floats agree to 1e-12 relative. The
    # forecast's fits are iterative and stop at a tolerance (IRLS at a
    # relative deviance change of 1e-10, the cell levels at 1e-9), which the
    # two libraries reach at points 1e-12 apart: 1e-9 for them.
    rel = 1e-9 if name in ("forecast", "backtest") else 1e-12
    assert_close(wasm["results"][name]["rows"], json.loads(cli_json), name, rel)
    # Python's Arrow table equals the command line's Parquet file.
    py = safetyscope.Dataset.open(str(sample)).run(name).to_arrow()
    assert py.num_rows == cli_table.num_rows and py.num_rows > 0, name
    assert py.equals(cli_table.cast(py.schema)), name
    assert pq.read_table(job / f"{name}.parquet").equals(cli_table)
    # Charts: the same SVG wherever the analysis draws one.
    py_svg = safetyscope.Dataset.open(str(sample)).run(name).plot()
    assert (py_svg.svg if py_svg else "") == wasm["results"][name]["svg"]


def test_wasm_lists_the_registry(wasm: dict[str, Any]) -> None:
    assert wasm["registry"] == REGISTRY


def assert_close(got: Any, want: Any, where: str, rel: float = 1e-12) -> None:
    if isinstance(want, float) and isinstance(got, float):
        assert got == pytest.approx(want, rel=rel, abs=1e-300), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            assert_close(got[k], want[k], f"{where}.{k}", rel)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, f"{where}[{i}]", rel)
    else:
        assert type(got) is type(want) and got == want, (where, got, want)


def default_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
        return ",".join(x if isinstance(x, str) else json.dumps(x) for x in v)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("name", NAMES)
def test_cli_help_lists_every_option_with_its_default(name: str, cli: str) -> None:
    r = subprocess.run([cli, name, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    help_text = re.sub(r"\s+", " ", r.stdout)
    a = next(a for a in REGISTRY if a["name"] == name)
    for o in a["options"]:
        flag = "--" + o["name"].replace("_", "-")
        assert flag + " " in help_text, (name, flag)
        if o["default"] is not None:
            assert f"[default: {default_text(o['default'])}]" in help_text, (name, o["name"])
    for p in a["params"]:
        assert f"--{p['name']}" in help_text and f"[default: {p['default']}]" in help_text


@pytest.mark.parametrize("name", NAMES)
def test_python_docstrings_list_every_option_with_its_default(name: str) -> None:
    a = next(a for a in REGISTRY if a["name"] == name)
    doc = re.sub(r"\s+", " ", getattr(safetyscope.Dataset, a["python"]).__doc__ or "")
    for o in a["options"]:
        key = "from_" if o["name"] == "from" else o["name"]
        if name == "targets":
            # Written by hand (it reads a targets file): names its options.
            assert f"``{key}``" in doc, key
            continue
        default = "none" if o["default"] is None else "``" + json.dumps(o["default"], ensure_ascii=False) + "``"
        assert f"``{key}`` (" in doc and f"default {default}" in doc, (name, key)
