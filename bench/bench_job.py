"""Time and peak memory of the nightly job at growing sizes.

    python bench/bench_job.py --bin $CARGO_TARGET_DIR/release/safetyscope --scale 24 --scale 240 --out /tmp/bench-job

For each scale the sample generator writes the event tables (incidents,
hazards, violations) with the plan, exposure, activities, targets and
thresholds (the position and sensor streams are left out: they grow with
people and sensors, not events). The job (`bench/job.toml`) validates the
data into a store and runs the analyses of the nightly example on it, under
`--memory-limit`; `/usr/bin/time -v` gives the peak resident memory of the
whole run, `run-summary.json` the seconds per stage.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import subprocess

import pyarrow.parquet as pq

TABLES = "incidents,hazards,violations,exposure,activities,targets,thresholds"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--scale", type=float, action="append", required=True)
    ap.add_argument("--out", default="/tmp/safetyscope-bench-job")
    ap.add_argument("--memory-limit", default="2G")
    a = ap.parse_args()
    job = pathlib.Path(__file__).with_name("job.toml").read_text()
    rows = []
    for scale in a.scale:
        d = pathlib.Path(a.out) / f"scale-{scale:g}"
        data = d / "data"
        if not (data / "incidents.parquet").exists():
            subprocess.run([a.bin, "generate", "--out", str(data), "--scale", str(scale), "--only", TABLES], check=True)
        (d / "job.toml").write_text(job)
        shutil.rmtree(d / "out", ignore_errors=True)
        shutil.rmtree(d / "store", ignore_errors=True)
        p = subprocess.run(
            ["/usr/bin/time", "-v", a.bin, "--memory-limit", a.memory_limit, "run", str(d / "job.toml"), "--log-format", "json"],
            capture_output=True, text=True,
        )
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", p.stderr).group(1)
        secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
        summary = json.loads((d / "out" / "run-summary.json").read_text())
        events = {t: pq.read_metadata(data / f"{t}.parquet").num_rows for t in ("incidents", "hazards", "violations")}
        rows.append({"scale": scale, "events": events, "wall_s": round(secs, 1), "peak_rss_mb": round(rss_kb / 1024),
                     "stages": {k: round(v, 2) for k, v in summary["stages"]}})
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
