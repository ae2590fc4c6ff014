"""The cost of calling the analyses from Python: the same analyses on the
same in-memory tables, timed from Python (the wheel) and from Rust (the
`in_memory` example), both built with the `perf` profile (the `bench`
settings; maturin cannot build an extension with `bench` itself).

    cargo build --profile perf -p safetyscope-core --example in_memory
    scripts/build-python.sh perf $VENV /tmp/bench-wheels
    python bench/bench_python.py --example $CARGO_TARGET_DIR/perf/examples/in_memory --bin $CARGO_TARGET_DIR/release/safetyscope --scale 240 --out /tmp/bench-py

The input is read with pyarrow into memory (incidents, hazards, violations,
the plan, exposure, activities, targets, thresholds) and handed to
`Dataset.from_tables`; resident memory is read from /proc before and after,
so a copy of the input would show as a jump of its size.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import time

import pyarrow.parquet as pq

import safetyscope

TABLES = ("cells", "incidents", "hazards", "violations", "exposure", "activities", "targets", "thresholds")

# name, job kind, options (job-file form), Python call.
ANALYSES = [
    ("risk", "risk", {"from": "2025-09-01", "to": "2025-12-01", "half_life_days": 30},
     lambda ds: ds.risk_map(from_="2025-09-01", to="2025-12-01", half_life_days=30)),
    ("hotspots", "hotspots", {"site": "U01", "from": "2025-01-01", "to": "2025-12-01"},
     lambda ds: ds.hotspots(site="U01", from_="2025-01-01", to="2025-12-01")),
    ("heatmap", "heatmap", {"site": "U01"}, lambda ds: ds.heatmap(site="U01")),
    ("profile", "patterns", {"view": "profile", "by": ["site", "zone"]},
     lambda ds: ds.time_profile(by=["site", "zone"])),
    ("peaks", "peaks", {"by": ["site"]}, lambda ds: ds.peaks(by=["site"])),
    ("trends", "trends", {}, lambda ds: ds.trends()),
    ("kpis", "kpis", {"periods": ["quarter"], "scopes": ["group", "site"]},
     lambda ds: ds.kpis(periods=["quarter"], scopes=["group", "site"])),
    ("alerts", "alerts", {"as_of": "2025-12-01"}, lambda ds: ds.alerts(as_of="2025-12-01")),
]


def rss_mb() -> float:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", required=True, help="the in_memory example binary (bench profile)")
    ap.add_argument("--bin", required=True, help="a safetyscope binary to generate the data with")
    ap.add_argument("--scale", type=float, default=240.0)
    ap.add_argument("--out", default="/tmp/safetyscope-bench-py")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    d = pathlib.Path(a.out) / f"scale-{a.scale:g}"
    if not (d / "incidents.parquet").exists():
        only = ",".join(t for t in TABLES if t != "cells")
        subprocess.run([a.bin, "generate", "--out", str(d), "--scale", str(a.scale), "--only", only], check=True)
    spec = [[name, kind, opts] for name, kind, opts, _ in ANALYSES]
    (d / "analyses.json").write_text(json.dumps(spec))
    rust = json.loads(subprocess.run([a.example, str(d), str(d / "analyses.json"), str(a.repeat)],
                                     check=True, capture_output=True, text=True).stdout)

    rss0 = rss_mb()
    tables = {t: pq.read_table(d / f"{t}.parquet") for t in TABLES if (d / f"{t}.parquet").exists()}
    input_mb = sum(t.nbytes for t in tables.values()) / 2**20
    rss1 = rss_mb()
    t = time.perf_counter()
    ds = safetyscope.Dataset.from_tables(tables, mapping=d / "dataset.toml")
    load_s = time.perf_counter() - t
    rss2 = rss_mb()
    times = {}
    for name, _, _, call in ANALYSES:
        runs = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            call(ds)
            runs.append(time.perf_counter() - t)
        times[name] = statistics.median(runs)
    rss3 = rss_mb()
    report = {
        "events": {t: tables[t].num_rows for t in ("incidents", "hazards", "violations")},
        "input_mb": round(input_mb),
        "rss_mb": {"before_input": round(rss0), "input_read": round(rss1), "after_from_tables": round(rss2),
                   "after_analyses": round(rss3)},
        "load_s": {"python": round(load_s, 3), "rust": round(rust["load_s"], 3)},
        "analyses": {n: {"python_s": round(times[n], 3), "rust_s": round(rust["analyses"][n], 3),
                         "overhead_pct": round(100 * (times[n] / rust["analyses"][n] - 1), 1)} for n in times},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
