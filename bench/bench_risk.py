"""Side-by-side timing of the cell risk score: safetyscope (CLI, end to end)
against the same computation written by hand in DuckDB SQL and in Polars, on
the same Parquet files, with the results checked equal: once end to end from
the generated files (safetyscope validates them on every run), once on the
store `safetyscope ingest` writes (validated once; all three engines read the
store's files).

    pip install duckdb polars pyarrow
    python bench/bench_risk.py --bin $CARGO_TARGET_DIR/ci/safetyscope --scale 240 --out /tmp/bench

The score per cell over [FROM, TO): severity-weighted incidents, near misses,
violations × 0.5, hazards open at TO (general 1, major 4) and overdue at TO
(general 2, major 8, × min(1 + days overdue / 7, 3)), and the same score for
the window before; without exposure normalisation (`--no-exposure`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import time

import duckdb
import polars as pl
import pyarrow.parquet as pq

FROM, TO, PREV = "2025-10-01", "2026-01-01", "2025-07-01"  # PREV = FROM − (TO − FROM)
TZ = "Asia/Shanghai"

SQL = """
with params as (
  select timestamptz '{to} 00:00:00+08' as t1, timestamptz '{frm} 00:00:00+08' as t0, timestamptz '{prev} 00:00:00+08' as tp
),
inc as (
  select site, cell,
    sum(case when occurred_at >= t0 then case severity when 'first_aid' then 2 when 'minor' then 5 when 'serious' then 15 when 'fatal' then 40 else 0 end else 0 end) as c_injuries,
    sum(case when occurred_at >= t0 and severity = 'near_miss' then 1 else 0 end) as c_near_misses,
    sum(case when occurred_at < t0 then case severity when 'near_miss' then 1 when 'first_aid' then 2 when 'minor' then 5 when 'serious' then 15 else 40 end else 0 end) as p_inc
  from read_parquet('{incidents}'), params where occurred_at >= tp and occurred_at < t1 group by all
),
vio as (
  select site, cell, sum(case when detected_at >= t0 then 0.5 else 0 end) as c_violations, sum(case when detected_at < t0 then 0.5 else 0 end) as p_vio
  from read_parquet('{violations}'), params where detected_at >= tp and detected_at < t1 group by all
),
haz as (
  select site, cell,
    sum(case when reported_at < t and (closed_at is null or closed_at >= t) then
      (case when level = 'major' then 4 else 1 end) +
      case when due_at < t then least(1 + floor(epoch_us(t - due_at) / 86400e6) / 7.0, 3) * (case when level = 'major' then 8 else 2 end) else 0 end
    else 0 end) filter (where t = t1) as c_hazards,
    sum(case when reported_at < t and (closed_at is null or closed_at >= t) then
      (case when level = 'major' then 4 else 1 end) +
      case when due_at < t then least(1 + floor(epoch_us(t - due_at) / 86400e6) / 7.0, 3) * (case when level = 'major' then 8 else 2 end) else 0 end
    else 0 end) filter (where t = t0) as p_haz
  from read_parquet('{hazards}'), (select t1 as t from params union all select t0 from params) ts, params
  where reported_at < ts.t group by all
)
select c.site, c.cell,
  coalesce(c_injuries, 0) + coalesce(c_near_misses, 0) + coalesce(c_violations, 0) + coalesce(c_hazards, 0) as score,
  coalesce(p_inc, 0) + coalesce(p_vio, 0) + coalesce(p_haz, 0) as previous_score
from read_parquet('{cells}') c
left join inc using (site, cell) left join vio using (site, cell) left join haz using (site, cell)
order by site, cell
"""


def tables(d: pathlib.Path) -> dict[str, str]:
    """The Parquet files of each table: `<table>.parquet` as generated, or
    `<table>/*.parquet` in a store written by `safetyscope ingest`."""
    if (d / "_safetyscope.json").exists():
        return {t: str(d / t / "*.parquet") for t in ("incidents", "hazards", "violations", "cells")}
    return {t: str(d / f"{t}.parquet") for t in ("incidents", "hazards", "violations", "cells")}


def run_duckdb(d: pathlib.Path) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("set TimeZone = 'Asia/Shanghai'")
    return pl.from_arrow(con.sql(SQL.format(to=TO, frm=FROM, prev=PREV, **tables(d))).arrow())


def run_polars(d: pathlib.Path) -> pl.DataFrame:
    f = tables(d)
    t1 = pl.lit(TO).str.to_datetime(time_zone=TZ, time_unit="us")
    t0 = pl.lit(FROM).str.to_datetime(time_zone=TZ, time_unit="us")
    tp = pl.lit(PREV).str.to_datetime(time_zone=TZ, time_unit="us")
    w = pl.col("severity").replace_strict({"near_miss": 1.0, "first_aid": 2.0, "minor": 5.0, "serious": 15.0, "fatal": 40.0})
    inc = (
        pl.scan_parquet(f["incidents"])
        .filter((pl.col("occurred_at") >= tp) & (pl.col("occurred_at") < t1))
        .group_by("site", "cell")
        .agg(w.filter(pl.col("occurred_at") >= t0).sum().alias("now"), w.filter(pl.col("occurred_at") < t0).sum().alias("prev"))
    )
    vio = (
        pl.scan_parquet(f["violations"])
        .filter((pl.col("detected_at") >= tp) & (pl.col("detected_at") < t1))
        .group_by("site", "cell")
        .agg((pl.col("detected_at") >= t0).sum().mul(0.5).alias("now"), (pl.col("detected_at") < t0).sum().mul(0.5).alias("prev"))
    )

    def hazards_at(t: pl.Expr, name: str) -> pl.LazyFrame:
        major = pl.col("level") == "major"
        days = ((t - pl.col("due_at")).dt.total_microseconds() // 86_400_000_000).cast(pl.Float64)
        overdue = pl.when(pl.col("due_at") < t).then(pl.min_horizontal(1 + days / 7.0, pl.lit(3.0)) * pl.when(major).then(8.0).otherwise(2.0)).otherwise(0.0)
        return (
            pl.scan_parquet(f["hazards"])
            .filter((pl.col("reported_at") < t) & (pl.col("closed_at").is_null() | (pl.col("closed_at") >= t)))
            .group_by("site", "cell")
            .agg((pl.when(major).then(4.0).otherwise(1.0) + overdue).sum().alias(name))
        )

    cells = pl.scan_parquet(f["cells"]).select("site", "cell")
    out = (
        cells.join(inc, on=["site", "cell"], how="left")
        .join(vio, on=["site", "cell"], how="left", suffix="_v")
        .join(hazards_at(t1, "h_now"), on=["site", "cell"], how="left")
        .join(hazards_at(t0, "h_prev"), on=["site", "cell"], how="left")
        .fill_null(0.0)
        .select(
            "site",
            "cell",
            (pl.col("now") + pl.col("now_v") + pl.col("h_now")).alias("score"),
            (pl.col("prev") + pl.col("prev_v") + pl.col("h_prev")).alias("previous_score"),
        )
        .sort("site", "cell")
    )
    return out.collect()


def run_safetyscope(binary: str, d: pathlib.Path, out: pathlib.Path) -> pl.DataFrame:
    subprocess.run(
        [binary, "risk", str(d), "--from", FROM, "--to", TO, "--no-exposure", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return pl.read_parquet(out).select("site", "cell", "score", "previous_score").sort("site", "cell")


def timed(f, repeat: int) -> tuple[float, pl.DataFrame]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


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
    rows = {t: pq.ParquetFile(d / f"{t}.parquet").metadata.num_rows for t in ("incidents", "hazards", "violations")}
    # Beside the data, never inside it (an output may not join its input).
    store = d.parent / f"{d.name}-store"
    t = time.perf_counter()
    subprocess.run([a.bin, "ingest", str(d), "--out", str(store)], check=True, capture_output=True)
    ingest_t = time.perf_counter() - t
    report = {"rows": rows, "ingest_s": round(ingest_t, 3)}
    # End to end from the generated files (validated on every run), then on
    # the store (validated once by `ingest`; every engine reads its files).
    for mode, src in (("raw", d), ("store", store)):
        ours_t, ours = timed(lambda: run_safetyscope(a.bin, src, d.parent / f"{d.name}-risk.parquet"), a.repeat)
        duck_t, duck = timed(lambda: run_duckdb(src), a.repeat)
        pol_t, pol = timed(lambda: run_polars(src), a.repeat)
        for name, other in (("duckdb", duck), ("polars", pol)):
            diff = (ours["score"] - other["score"]).abs().max(), (ours["previous_score"] - other["previous_score"]).abs().max()
            assert max(diff) < 1e-6, f"{name} disagrees on {mode}: {diff}"
        report[mode] = {"safetyscope_s": round(ours_t, 3), "duckdb_s": round(duck_t, 3), "polars_s": round(pol_t, 3),
                        "ratio_vs_duckdb": round(ours_t / duck_t, 2), "ratio_vs_polars": round(ours_t / pol_t, 2)}
    print(json.dumps(report, indent=2))

if __name__ == "__main__":
    main()
