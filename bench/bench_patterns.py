"""Side-by-side timing of the hour × weekday profile by site and zone:
safetyscope (CLI, end to end) against the same counts written by hand in
DuckDB SQL and in Polars, on the same Parquet files, results checked equal.

    pip install duckdb polars pyarrow
    python bench/bench_patterns.py --bin $CARGO_TARGET_DIR/ci/safetyscope --scale 240 --out /tmp/bench

Incidents with a known time of day, counted per site, zone, local weekday
(0 = Monday) and local hour in Asia/Shanghai, every one of the 168 cells
present per zone (zeros included).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess

import duckdb
import polars as pl
import pyarrow.parquet as pq

from bench_risk import timed

TZ = "Asia/Shanghai"

SQL = """
with counts as (
  select site, zone,
    isodow(timezone('{tz}', occurred_at)) - 1 as weekday,
    hour(timezone('{tz}', occurred_at)) as hour,
    count(*) as events
  from read_parquet('{incidents}')
  where coalesce(time_known, true)
  group by all
),
groups as (select distinct site, zone from read_parquet('{incidents}')),
grid as (select * from groups, range(7) d(weekday), range(24) h(hour))
select g.site, g.zone, g.weekday, g.hour, coalesce(c.events, 0) as events
from grid g left join counts c using (site, zone, weekday, hour)
order by site, zone, weekday, hour
"""


def incidents(d: pathlib.Path) -> str:
    """The incident files: `incidents.parquet` as generated, or
    `incidents/*.parquet` in a store written by `safetyscope ingest`."""
    if (d / "_safetyscope.json").exists():
        return str(d / "incidents" / "*.parquet")
    return str(d / "incidents.parquet")


def run_duckdb(d: pathlib.Path) -> pl.DataFrame:
    con = duckdb.connect()
    return pl.from_arrow(con.sql(SQL.format(incidents=incidents(d), tz=TZ)).arrow()).with_columns(
        pl.col("weekday").cast(pl.Int64), pl.col("hour").cast(pl.Int64), pl.col("events").cast(pl.Float64)
    )


def run_polars(d: pathlib.Path) -> pl.DataFrame:
    inc = pl.scan_parquet(incidents(d))
    local = pl.col("occurred_at").dt.convert_time_zone(TZ)
    counts = (
        inc.filter(pl.col("time_known").fill_null(True))
        .group_by("site", "zone", (local.dt.weekday() - 1).cast(pl.Int64).alias("weekday"), local.dt.hour().cast(pl.Int64).alias("hour"))
        .agg(pl.len().cast(pl.Float64).alias("events"))
    )
    grid = (
        inc.select("site", "zone").unique()
        .join(pl.LazyFrame({"weekday": list(range(7))}, schema={"weekday": pl.Int64}), how="cross")
        .join(pl.LazyFrame({"hour": list(range(24))}, schema={"hour": pl.Int64}), how="cross")
    )
    return (
        grid.join(counts, on=["site", "zone", "weekday", "hour"], how="left")
        .with_columns(pl.col("events").fill_null(0.0))
        .sort("site", "zone", "weekday", "hour")
        .collect()
    )


def run_safetyscope(binary: str, d: pathlib.Path, out: pathlib.Path) -> pl.DataFrame:
    subprocess.run(
        [binary, "patterns", str(d), "--by", "site,zone", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return (
        pl.read_parquet(out)
        .filter(pl.col("hour").is_not_null())
        .select("site", "zone", pl.col("weekday").cast(pl.Int64), pl.col("hour").cast(pl.Int64), "events")
        .sort("site", "zone", "weekday", "hour")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--scale", type=float, default=240.0)
    ap.add_argument("--out", default="/tmp/safetyscope-bench")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    d = pathlib.Path(a.out) / f"scale-{a.scale:g}"
    if not (d / "incidents.parquet").exists():
        subprocess.run([a.bin, "generate", "--out", str(d), "--scale", str(a.scale), "--only", "incidents,hazards,violations"], check=True)
    rows = pq.ParquetFile(d / "incidents.parquet").metadata.num_rows
    # Beside the data, never inside it (an output may not join its input).
    store = d.parent / f"{d.name}-store"
    if not (store / "_safetyscope.json").exists():
        subprocess.run([a.bin, "ingest", str(d), "--out", str(store)], check=True, capture_output=True)
    report = {"incidents": rows}
    # End to end from the generated files (validated on every run), then on
    # the store written by `safetyscope ingest` (all engines read its files).
    for mode, src in (("raw", d), ("store", store)):
        ours_t, ours = timed(lambda: run_safetyscope(a.bin, src, d.parent / f"{d.name}-profile.parquet"), a.repeat)
        duck_t, duck = timed(lambda: run_duckdb(src), a.repeat)
        pol_t, pol = timed(lambda: run_polars(src), a.repeat)
        for name, other in (("duckdb", duck), ("polars", pol)):
            assert ours.shape == other.shape, f"{name}: {ours.shape} vs {other.shape}"
            assert ours.equals(other), f"{name} disagrees on {mode}"
        report[mode] = {"safetyscope_s": round(ours_t, 3), "duckdb_s": round(duck_t, 3), "polars_s": round(pol_t, 3),
                        "ratio_vs_duckdb": round(ours_t / duck_t, 2), "ratio_vs_polars": round(ours_t / pol_t, 2)}
    print(json.dumps(report, indent=2))

if __name__ == "__main__":
    main()
