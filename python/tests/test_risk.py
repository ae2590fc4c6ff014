"""The four-colour risk map against an independent pandas computation of the
rules in docs/analyses.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import safetyscope

TZ = "Asia/Shanghai"
SEV = {"near_miss": 1.0, "first_aid": 2.0, "minor": 5.0, "serious": 15.0, "fatal": 40.0}
ORDER = ["blue", "yellow", "orange", "red"]


def band(v: float, bands: list[tuple[float, str]], above: bool) -> str:
    for t, level in bands:
        if (above and v >= t) or (not above and v > t):
            return level
    return "blue"


def evidence(path, lo: pd.Timestamp, hi: pd.Timestamp, half_life: float | None) -> pd.DataFrame:
    inc = pq.read_table(path / "incidents.parquet").to_pandas()
    vio = pq.read_table(path / "violations.parquet").to_pandas()
    haz = pq.read_table(path / "hazards.parquet").to_pandas()
    day = pd.Timedelta(days=1)

    def decay(t: pd.Series) -> pd.Series:
        age = (hi - t) // day
        return 0.5 ** (age / half_life) if half_life else pd.Series(1.0, index=t.index)

    i = inc[(inc.occurred_at >= lo) & (inc.occurred_at < hi)].copy()
    i["w"] = i.severity.map(SEV) * decay(i.occurred_at)
    i["near"] = i.severity == "near_miss"
    v = vio[(vio.detected_at >= lo) & (vio.detected_at < hi)].copy()
    v["w"] = 0.5 * decay(v.detected_at)
    h = haz[(haz.reported_at < hi) & (haz.closed_at.isna() | (haz.closed_at >= hi))].copy()
    major = h.level == "major"
    h["open"] = np.where(major, 4.0, 1.0)
    overdue = h.due_at.notna() & (h.due_at < hi)
    days = ((hi - h.due_at) // day).where(overdue, 0)
    h["overdue"] = np.where(overdue, np.minimum(1 + days / 7.0, 3.0) * np.where(major, 8.0, 2.0), 0.0)
    key = ["site", "cell"]
    # Sensor alarm episodes: a reading at or above the alarm threshold after
    # one below it (or after a gap of more than 2 h) starts an episode.
    rd = pq.read_table(path / "readings.parquet").to_pandas()
    th = pq.read_table(path / "thresholds.parquet").to_pandas()[["metric", "alarm"]]
    rd = rd[(rd.ts >= lo) & (rd.ts < hi)].merge(th, on="metric").sort_values(["sensor_id", "metric", "ts"])
    above = rd.value >= rd.alarm
    g = rd.groupby(["sensor_id", "metric"])
    before = above.groupby([rd.sensor_id, rd.metric]).shift(fill_value=False).astype(bool)
    gap = g.ts.diff() > pd.Timedelta(hours=2)
    a = rd[above & (~before | gap)].copy()
    a["w"] = 2.0 * decay(a.ts)
    # Fence intrusions: a fix inside a restricted cell after a fix outside it
    # (or after a gap of more than 10 minutes) is an entry.
    cells = pq.read_table(path / "cells.parquet").to_pandas()
    fences = cells[cells.restricted.fillna(False)]
    pos = pq.read_table(path / "positions.parquet").to_pandas()
    pos = pos[(pos.ts >= lo) & (pos.ts < hi)].sort_values(["site", "person_id", "ts"]).reset_index(drop=True)
    pos["cell"] = None
    for c in fences.itertuples():
        m = (pos.site == c.site) & (pos.x >= c.x_min) & (pos.x < c.x_max) & (pos.y >= c.y_min) & (pos.y < c.y_max)
        pos.loc[m, "cell"] = c.cell
    prev_cell = pos.groupby(["site", "person_id"]).cell.shift()
    prev_gap = pos.groupby(["site", "person_id"]).ts.diff() > pd.Timedelta(minutes=10)
    entry = pos.cell.notna() & ((prev_cell != pos.cell) | prev_cell.isna() | prev_gap)
    f = pos[entry].copy()
    f["w"] = 1.0 * decay(f.ts)
    out = pd.concat(
        {
            "c_alarms": a.groupby(key).w.sum(),
            "c_intrusions": f.groupby(key).w.sum(),
            "c_injuries": i[~i.near].groupby(key).w.sum(),
            "c_near_misses": i[i.near].groupby(key).w.sum(),
            "c_violations": v.groupby(key).w.sum(),
            "c_open_hazards": h.groupby(key).open.sum(),
            "c_overdue_hazards": h.groupby(key).overdue.sum(),
        },
        axis=1,
    )
    return out.fillna(0.0)


def pandas_risk(path, frm: str, to: str, half_life: float | None) -> pd.DataFrame:
    lo, hi = pd.Timestamp(frm, tz=TZ), pd.Timestamp(to, tz=TZ)
    cells = pq.read_table(path / "cells.parquet").to_pandas().set_index(["site", "cell"])
    ev = evidence(path, lo, hi, half_life).reindex(cells.index, fill_value=0.0)
    ev["score"] = ev[["c_injuries", "c_near_misses", "c_open_hazards", "c_overdue_hazards", "c_violations",
                      "c_alarms", "c_intrusions"]].sum(axis=1)
    prev = evidence(path, lo - (hi - lo), lo, half_life).reindex(cells.index, fill_value=0.0).sum(axis=1)
    ev["previous_score"] = prev
    # Hours: each exposure row's share of the window, spread over its zone's cells.
    exp = pq.read_table(path / "exposure.parquet").to_pandas()
    overlap = (np.minimum(exp.period_end, hi) - np.maximum(exp.period_start, lo)).clip(lower=pd.Timedelta(0))
    exp["h"] = exp.hours_worked * (overlap / (exp.period_end - exp.period_start))
    zone_hours = exp.groupby(["site", "zone"]).h.sum()
    n_cells = cells.reset_index().groupby(["site", "zone"]).size()
    per_cell = (zone_hours / n_cells).rename("hours")
    ev["hours"] = [per_cell.get((s, z), 0.0) for (s, _), z in zip(cells.index, cells.zone)]
    # Global empirical Bayes, method of moments.
    s, h = ev.score, ev.hours
    m = s.sum() / h.sum()
    rel = h >= 0.1 * np.sort(h[h > 0].to_numpy())[len(h[h > 0]) // 2]
    var = (h[rel] * (s[rel] / h[rel] - m) ** 2).sum() / h[rel].sum()
    a = var - m / (h[rel].sum() / rel.sum())
    k = m / a if a > 0 else np.inf
    smoothed = (s + k * m) / (h + k) if np.isfinite(k) else pd.Series(m, index=s.index)
    ev["smoothed_per_1000h"] = smoothed * 1000
    ev["ratio"] = smoothed / m
    ev["dynamic_level"] = [band(r, [(3, "red"), (2, "orange"), (1.25, "yellow")], True) for r in ev.ratio]
    lec = cells.lec_l * cells.lec_e * cells.lec_c
    ls = (cells.ls_l * cells.ls_s).astype(float)
    static = [
        band(d, [(320, "red"), (160, "orange"), (70, "yellow")], False) if pd.notna(d) else band(r, [(20, "red"), (15, "orange"), (9, "yellow")], True)
        for d, r in zip(lec, ls)
    ]
    ev["static_level"] = static
    ev["level"] = [max(a_, b_, key=ORDER.index) for a_, b_ in zip(static, ev.dynamic_level)]
    return ev


@pytest.fixture(scope="module")
def sample_store(sample, tmp_path_factory):
    """The sample validated into a store of small files: the risk map then
    reads its files in parallel partitions, the keys dictionary-encoded."""
    path, _ = sample
    out = tmp_path_factory.mktemp("risk") / "store"
    safetyscope.ingest(str(path), str(out), rows_per_file=700)
    return out


@pytest.mark.parametrize("source", ["files", "store"])
@pytest.mark.parametrize("half_life", [None, 30.0])
def test_cell_levels_and_contributions_equal_pandas(sample, sample_store, half_life, source):
    path, _ = sample
    got = (
        safetyscope.Dataset.open(path if source == "files" else sample_store)
        .risk_map(from_="2025-10-01", to="2026-01-01", half_life_days=half_life)
        .to_pandas()
        .set_index(["site", "cell"])
    )
    want = pandas_risk(path, "2025-10-01", "2026-01-01", half_life)
    assert len(got) == len(want) == 108
    got = got.loc[want.index]
    assert want["c_alarms"].sum() > 0 and want["c_intrusions"].sum() > 0
    for c in ["c_injuries", "c_near_misses", "c_open_hazards", "c_overdue_hazards", "c_violations", "c_alarms",
              "c_intrusions", "score",
              "previous_score", "hours", "smoothed_per_1000h", "ratio"]:
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=c)
    for c in ["dynamic_level", "static_level", "level"]:
        assert got[c].tolist() == want[c].tolist(), c


def test_rollups_take_the_worst_cell(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    cells = ds.risk_map(to="2026-01-01").to_pandas()
    zones = ds.risk_map(to="2026-01-01", by="zone").to_pandas().set_index(["site", "zone"])
    for (site, zone), g in cells.groupby(["site", "zone"]):
        z = zones.loc[(site, zone)]
        assert z.cells == len(g)
        assert z.level == max(g.level, key=ORDER.index)
        assert z.red_cells == (g.level == "red").sum()
        assert z.score == pytest.approx(g.score.sum())
    sites = ds.risk_map(to="2026-01-01", by="site").to_pandas()
    assert sites[["red_cells", "orange_cells", "yellow_cells", "blue_cells"]].sum(axis=1).tolist() == [36, 36, 36]


def test_band_tables_are_configurable_and_named(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    strict = {"name": "LEC strict (test)", "bands": [[100.0, "red"], [50.0, "orange"], [20.0, "yellow"]], "boundary_above": True}
    rm = ds.risk_map(to="2026-01-01", lec_bands=strict, rule="static").to_pandas()
    lec_rows = rm[rm.static_method == "lec"]
    assert (lec_rows.static_table == "LEC strict (test)").all()
    expect = [band(v, [(100, "red"), (50, "orange"), (20, "yellow")], True) for v in lec_rows.static_value]
    assert lec_rows.level.tolist() == expect
    assert set(rm.level_source) <= {"static", "dynamic"}
    with pytest.raises(safetyscope.OptionError):
        ds.risk_map(lec_bands={"name": "x", "bands": [[1.0, "red"], [5.0, "orange"]], "boundary_above": True})
    chart = ds.risk_map(to="2026-01-01", site="U01").plot()
    assert chart is not None and chart.svg.count('class="cell"') == 36 and "重大风险" in chart.svg


def test_hotspot_markers_are_gi_star_of_the_scores(sample):
    from esda.getisord import G_Local
    from libpysal.weights import lat2W

    path, _ = sample
    rm = safetyscope.Dataset.open(path).risk_map(to="2026-01-01", site="U02").to_pandas().sort_values(["row", "col"])
    z = G_Local(rm.score.to_numpy(float), lat2W(6, 6, rook=False), transform="B", star=True, permutations=0).Zs
    np.testing.assert_allclose(rm.hotspot_z.to_numpy(), z, atol=1e-6)
    assert set(rm.hotspot) <= {"hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"}
    chart = safetyscope.Dataset.open(path).risk_map(to="2026-01-01", site="U02").plot()
    hot = (rm.hotspot.str.startswith("hot_")).sum()
    # Each marked cell carries ▲ in its label (attribute and text), plus the legend.
    assert chart is not None and chart.svg.count("▲") == 2 * hot + 1
