"""KPIs, targets and follow-up lists against independent pandas / numpy /
scipy computations, on the generated sample and on real public files."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import safetyscope

NYC_FMT = "%m/%d/%Y %I:%M:%S %p"


@pytest.fixture(scope="module")
def ds(sample: tuple[pathlib.Path, dict[str, Any]]) -> safetyscope.Dataset:
    return safetyscope.Dataset.open(sample[0])


def local(s: pd.Series, tz: str) -> pd.Series:
    return s.dt.tz_convert(tz)


def kpi(k: pd.DataFrame, scope: str, period: str, name: str) -> pd.Series:
    row = k[(k.scope == scope) & (k.period == period) & (k.kpi == name)]
    assert len(row) == 1, (scope, period, name)
    return row.iloc[0]


def test_injury_rates_equal_the_formulas(ds: safetyscope.Dataset) -> None:
    k = ds.kpis(periods=["year", "quarter"]).to_pandas()
    inc = ds.table("incidents").to_pandas()
    exp = ds.table("exposure").to_pandas()
    tz = ds.timezone
    inc["year"] = local(inc.occurred_at, tz).dt.year
    inc["quarter"] = local(inc.occurred_at, tz).dt.quarter
    exp["year"] = local(exp.period_start, tz).dt.year
    rec = inc.severity.isin(["minor", "serious", "fatal"])
    for site in sorted(inc.site.unique()):
        i = inc[(inc.site == site) & (inc.year == 2025)]
        hours = exp[(exp.site == site) & (exp.year == 2025)].hours_worked.sum()
        r = rec[i.index].sum()
        lost = i.lost_days.fillna(0).sum()
        assert kpi(k, site, "2025", "hours_worked").value == pytest.approx(hours, rel=1e-12)
        assert kpi(k, site, "2025", "trir").value == pytest.approx(r * 200_000 / hours, rel=1e-12)
        assert kpi(k, site, "2025", "ltifr").value == pytest.approx(
            (rec[i.index] & (i.lost_days.fillna(0) > 0)).sum() * 1e6 / hours, rel=1e-12
        )
        assert kpi(k, site, "2025", "injury_severity_rate").value == pytest.approx(lost * 1e6 / hours, rel=1e-12)
        assert kpi(k, site, "2025", "fatalities").value == (i.severity == "fatal").sum()
        q = inc[(inc.site == site) & (inc.year == 2025) & (inc.quarter == 2)]
        assert kpi(k, site, "2025-Q2", "near_misses").value == (q.severity == "near_miss").sum()
    # The group sums the sites.
    g = kpi(k, "group", "2025", "recordables").value
    assert g == rec[inc.year == 2025].sum()


def test_hazard_lifecycle_kpis_equal_pandas(ds: safetyscope.Dataset) -> None:
    k = ds.kpis(periods=["month"], scopes=["site"]).to_pandas()
    h = ds.table("hazards").to_pandas()
    tz = ds.timezone
    start, end = pd.Timestamp("2025-05-01", tz=tz), pd.Timestamp("2025-06-01", tz=tz)
    for site in sorted(h.site.unique()):
        s = h[h.site == site]
        found = s[(s.reported_at >= start) & (s.reported_at < end)]
        closed = found[found.closed_at.notna() & (found.closed_at < end)]
        cyc = ((closed.closed_at - closed.reported_at).dt.total_seconds() / 3600).to_numpy()
        assert kpi(k, site, "2025-05", "hazards_found").value == len(found)
        assert kpi(k, site, "2025-05", "rectification_rate").value == pytest.approx(len(closed) / len(found))
        assert kpi(k, site, "2025-05", "rectification_cycle_hours").value == pytest.approx(np.median(cyc), rel=1e-9)
        assert kpi(k, site, "2025-05", "rectification_cycle_p90_hours").value == pytest.approx(np.quantile(cyc, 0.9), rel=1e-9)
        open_ = s[(s.reported_at < end) & ~(s.closed_at.notna() & (s.closed_at < end))]
        assert kpi(k, site, "2025-05", "open_hazards").value == len(open_)
        assert kpi(k, site, "2025-05", "overdue_hazards").value == (open_.due_at < end).sum()
        due = s[(s.due_at >= start) & (s.due_at < end)]
        on_time = (due.closed_at.notna() & (due.closed_at <= due.due_at)).sum()
        assert kpi(k, site, "2025-05", "on_time_rate").value == pytest.approx(on_time / len(due))


def test_activity_kpis_equal_pandas(ds: safetyscope.Dataset) -> None:
    k = ds.kpis(periods=["quarter"], scopes=["site"]).to_pandas()
    a = ds.table("activities").to_pandas()
    exp = ds.table("exposure").to_pandas()
    tz = ds.timezone
    start, end = pd.Timestamp("2025-04-01", tz=tz), pd.Timestamp("2025-07-01", tz=tz)
    for site in sorted(a.site.unique()):
        q = a[(a.site == site) & (a["at"] >= start) & (a["at"] < end)]
        e = exp[(exp.site == site) & (exp.period_start >= start) & (exp.period_start < end)]
        # Average headcount over the quarter: monthly records weighted by length.
        days = (e.period_end - e.period_start).dt.total_seconds()
        heads = (e.headcount * days).sum() / (end - start).total_seconds()
        trained = q[q.kind == "training"].person_id.nunique()
        assert kpi(k, site, "2025-Q2", "training_coverage").value == pytest.approx(trained / heads, rel=1e-9)
        insp = q[q.kind == "inspection"]
        assert kpi(k, site, "2025-Q2", "leader_inspections_per_month").value == pytest.approx(
            len(insp) / insp.person_id.nunique() / 3
        )
        eq = q[q.kind == "equipment_check"]
        if len(eq):
            assert kpi(k, site, "2025-Q2", "equipment_readiness").value == pytest.approx(eq.value.mean())
        assert kpi(k, site, "2025-Q2", "suggestions_per_month").value == pytest.approx((q.kind == "suggestion").sum() / 3)


def test_targets_status_and_poisson_probability(ds: safetyscope.Dataset) -> None:
    targets = [
        {"kpi": "fatalities", "scope": "group", "period": "2025", "target": 100, "direction": "at_most"},
        {"kpi": "trir", "scope": "group", "period": "2025", "target": 0, "direction": "at_most", "baseline": "-20% vs 2024"},
        {"kpi": "trir", "scope": "group", "period": "2025-Q1", "target": 0, "direction": "at_most", "baseline": "-20% vs 2024"},
        {"kpi": "suggestions_per_month", "scope": "group", "period": "2025", "target": 1, "direction": "at_least"},
    ]
    t = ds.track_targets(targets, as_of="2025-07-01").to_pandas().set_index(["kpi", "period"])
    k = ds.kpis(periods=["year", "quarter"], scopes=["group"]).to_pandas()
    base = kpi(k, "group", "2024", "trir").value
    assert t.loc[("trir", "2025"), "effective_target"] == pytest.approx(base * 0.8, rel=1e-12)
    q1 = kpi(k, "group", "2025-Q1", "trir").value
    assert t.loc[("trir", "2025-Q1"), "actual"] == pytest.approx(q1, rel=1e-12)
    assert t.loc[("trir", "2025-Q1"), "status"] in {"achieved", "missed"}  # the quarter is over
    # Fatalities: a count; the chance of staying at or under 100 is the
    # Poisson CDF of the room left at the rate so far.
    f = t.loc[("fatalities", "2025")]
    share = f.elapsed
    lam = f.actual / share * (1 - share)
    assert f.probability == pytest.approx(scipy.stats.poisson.cdf(100 - f.actual, lam), rel=1e-9)
    assert f.projection == pytest.approx(f.actual / share, rel=1e-12)
    assert f.status == "on_track"
    assert t.loc[("suggestions_per_month", "2025"), "status"] == "on_track"


def test_targets_file_errors_name_the_line(ds: safetyscope.Dataset, tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "targets.csv"
    bad.write_text("kpi,scope,period,target,direction\ntrir,group,2025,1.5,at_most\ntrir,group,2025-Q5,1,at_most\n")
    with pytest.raises(safetyscope.DataError, match=r"targets.csv line 3, column `period`"):
        ds.track_targets(bad)


def test_repeat_violators_equal_pandas_runs(ds: safetyscope.Dataset, sample: tuple[pathlib.Path, dict[str, Any]]) -> None:
    _, truth = sample
    got = ds.repeat_violators(from_="2025-01-01", as_of="2026-01-01").to_pandas()
    v = ds.table("violations").to_pandas().dropna(subset=["person_id"])
    v["day"] = local(v.detected_at, ds.timezone).dt.date
    runs = []
    for (site, person, kind), g in v.groupby(["site", "person_id", "kind"]):
        days = sorted(set(g.day))
        start = prev = days[0]
        for d in days[1:] + [None]:
            if d is not None and (d - prev).days == 1:
                prev = d
                continue
            if (prev - start).days + 1 >= 3:
                runs.append((site, person, kind, str(start), (prev - start).days + 1))
            if d is not None:
                start = prev = d
    assert sorted(zip(got.site, got.person_id, got.kind, got.first_day, got.days)) == sorted(runs)
    planted = {(s, p, d, n) for s, p, d, n in truth["repeat_violators"]}
    assert planted <= set(zip(got.site, got.person_id, got.first_day, got.days))


def test_fence_intrusions_equal_pandas(ds: safetyscope.Dataset) -> None:
    got = ds.fence_intrusions(from_="2025-12-01", as_of="2026-01-01").to_pandas()
    cells = ds.table("cells").to_pandas()
    fences = cells[cells.restricted.fillna(False)]
    pos = ds.table("positions").to_pandas()
    pos = pos[(pos.ts >= pd.Timestamp("2025-12-01", tz=ds.timezone)) & (pos.ts < pd.Timestamp("2026-01-01", tz=ds.timezone))]
    want = []
    for (site, person), g in pos.sort_values("ts").groupby(["site", "person_id"]):
        f = fences[fences.site == site]
        inside = np.full(len(g), None, dtype=object)
        for c in f.itertuples():
            m = (g.x >= c.x_min) & (g.x < c.x_max) & (g.y >= c.y_min) & (g.y < c.y_max)
            inside[m.to_numpy()] = c.cell
        ts = g.ts.to_list()
        i = 0
        while i < len(ts):
            if inside[i] is None:
                i += 1
                continue
            j = i
            while j + 1 < len(ts) and inside[j + 1] == inside[i] and (ts[j + 1] - ts[j]) <= pd.Timedelta(minutes=10):
                j += 1
            if j + 1 == len(ts):
                end, how = ts[j], "ongoing"
            elif ts[j + 1] - ts[j] > pd.Timedelta(minutes=10):
                end, how = ts[j], "gap"
            else:
                end, how = ts[j + 1], "exit"
            want.append((site, person, inside[i], ts[i], end, how))
            i = j + 1
    got_t = sorted(zip(got.site, got.person_id, got.cell, got.entry, got.exit, got.ended_by))
    assert got_t == sorted(want)
    assert len(want) >= 3
    # The authorised list removes a person's episodes.
    who = got.person_id.iloc[0]
    fewer = ds.fence_intrusions(from_="2025-12-01", as_of="2026-01-01", authorised=[who]).to_pandas()
    assert who not in set(fewer.person_id) and len(fewer) == len(got) - (got.person_id == who).sum()


def test_alarm_episodes_of_the_sample_equal_the_planted_ones(ds: safetyscope.Dataset, sample: tuple[pathlib.Path, dict[str, Any]]) -> None:
    e = ds.alarm_episodes(from_="2025-01-01", as_of="2026-01-02").to_pandas()
    assert len(e) == sample[1]["alarm_episodes"]


def gas_episodes(threshold: float) -> list[tuple[Any, ...]]:
    raw = pd.read_csv(REPO / "examples/real/gas-sensors/air_quality_uci.csv", dtype=str)
    raw = raw.dropna(subset=["Date", "Time"])
    raw["v"] = pd.to_numeric(raw.NO2_GT, errors="coerce")
    raw = raw[raw.v.notna() & (raw.v != -200)].copy()
    raw["ts"] = pd.to_datetime(raw.Date + " " + raw.Time, format="%d/%m/%Y %H:%M:%S")
    d = raw.sort_values("ts").reset_index(drop=True)
    above = d.v >= threshold
    gap = d.ts.diff() > pd.Timedelta(minutes=120)
    run = ((above != above.shift()) | gap).cumsum()
    out = []
    for _, g in d[above].groupby(run[above]):
        last = g.index[-1]
        if last + 1 == len(d):
            end, how = d.ts[last], "ongoing"
        elif d.ts[last + 1] - d.ts[last] > pd.Timedelta(minutes=120):
            end, how = d.ts[last], "gap"
        else:
            end, how = d.ts[last + 1], "clear"
        out.append((g.ts.iloc[0], end, float(g.v.max()), len(g), how))
    return out


REPO = pathlib.Path(__file__).resolve().parents[2]


def test_gas_sensor_no2_episodes_equal_a_pandas_run_length_computation() -> None:
    ds = safetyscope.Dataset.open(REPO / "examples/real/air-quality-no2.toml")
    rep = ds.validation
    assert rep.rows_rejected("readings") == rep.rejected_counts("readings")["missing_required"]
    e = ds.alarm_episodes(from_="2004-01-01", as_of="2006-01-01", thresholds={"no2": 200.0}).to_pandas()
    want = gas_episodes(200.0)
    got = [
        (s.tz_convert("Etc/GMT-1").tz_localize(None), t.tz_convert("Etc/GMT-1").tz_localize(None), p, n, how)
        for s, t, p, n, how in zip(e.start, e.end, e.peak, e.readings, e.ended_by)
    ]
    assert got == want
    assert len(want) > 30


def nyc_frame() -> tuple[pd.DataFrame, dict[str, int]]:
    """The 311 sample with the mapping's rules applied by hand."""
    df = pd.read_csv(REPO / "examples/real/city-service-requests/nyc311_2014-2019_sample.csv", dtype=str)
    tz = "America/New_York"

    def ts(col: str) -> pd.Series:
        return pd.to_datetime(df[col], format=NYC_FMT).dt.tz_localize(tz, ambiguous=True, nonexistent="NaT")

    df["created"], df["closed"], df["due"] = ts("Created Date"), ts("Closed Date"), ts("Due Date")
    reasons: dict[str, int] = {}
    keep = []
    for r in df.itertuples():
        why = None
        if pd.notna(r.closed) and r.Status != "Closed":
            why = "inconsistent"
        elif (pd.notna(r.due) and r.due < r.created) or (pd.notna(r.closed) and r.closed < r.created):
            why = "end_before_start"
        if why:
            reasons[why] = reasons.get(why, 0) + 1
        keep.append(why is None)
    return df[keep], reasons


def test_nyc311_lifecycle_equals_pandas() -> None:
    ds = safetyscope.Dataset.open(REPO / "examples/real/nyc311-hazards.toml")
    acc, reasons = nyc_frame()
    rep = ds.validation
    assert rep.rejected_counts("hazards") == reasons
    assert reasons["inconsistent"] == 17  # closed dates on open, pending, assigned requests
    as_of = pd.Timestamp("2018-09-01", tz="America/New_York")
    od = ds.overdue_hazards(as_of="2018-09-01").to_pandas()
    want = acc[(acc.created < as_of) & (acc.due < as_of) & ~(acc.closed.notna() & (acc.closed < as_of))]
    assert sorted(od["id"]) == sorted(want["Unique Key"])
    hrs = dict(zip(od["id"], od.hours_overdue))
    for r in want.itertuples():
        assert hrs[r._1] == pytest.approx((as_of - r.due).total_seconds() / 3600)
    k = ds.kpis(periods=["year"], scopes=["site"]).to_pandas()
    for year in (2018, 2019):
        start = pd.Timestamp(f"{year}-01-01", tz="America/New_York")
        end = min(pd.Timestamp(f"{year + 1}-01-01", tz="America/New_York"), k_end(acc))
        f = acc[(acc.created >= start) & (acc.created < end)]
        c = f[f.closed.notna() & (f.closed < end)]
        cyc = ((c.closed - c.created).dt.total_seconds() / 3600).to_numpy()
        assert kpi(k, "NYC", str(year), "hazards_found").value == len(f)
        assert kpi(k, "NYC", str(year), "rectification_cycle_hours").value == pytest.approx(np.median(cyc), rel=1e-9)
        assert kpi(k, "NYC", str(year), "rectification_cycle_p90_hours").value == pytest.approx(np.quantile(cyc, 0.9), rel=1e-9)


def k_end(acc: pd.DataFrame) -> pd.Timestamp:
    """The KPI window ends at the day after the latest report."""
    last = acc.created.max()
    return (last.tz_convert("America/New_York").normalize() + pd.Timedelta(days=1))


def test_alerts_list_unifies_the_lists(ds: safetyscope.Dataset, sample: tuple[pathlib.Path, dict[str, Any]]) -> None:
    a = ds.alerts(from_="2025-12-01", as_of="2026-01-01").to_pandas()
    parts = {
        "overdue_hazard": len(ds.overdue_hazards(from_="2025-12-01", as_of="2026-01-01").to_pandas()),
        "repeat_violation": len(ds.repeat_violators(from_="2025-12-01", as_of="2026-01-01").to_pandas()),
        "fence_intrusion": len(ds.fence_intrusions(from_="2025-12-01", as_of="2026-01-01").to_pandas()),
        "sensor_alarm": len(ds.alarm_episodes(from_="2025-12-01", as_of="2026-01-01").to_pandas()),
    }
    counts = a.kind.value_counts().to_dict()
    for kind, n in parts.items():
        assert counts.get(kind, 0) == n, kind
    assert list(a.columns) == [
        "kind", "subject", "site", "zone", "cell", "since", "level", "detail",
        "owner", "cell_owner", "age_days", "amount", "limit", "urgency",
    ]
    # The values behind the text, from the lists themselves: the hazard's
    # owner, the hours overdue, days since the deadline, the cell's owner
    # from the plan, urgency by escalation step.
    oh = ds.overdue_hazards(from_="2025-12-01", as_of="2026-01-01").to_pandas().set_index("id")
    cells = pd.read_parquet(sample[0] / "cells.parquet").set_index("cell")["owner"]
    got = a[a.kind == "overdue_hazard"].set_index("subject")
    assert (got["owner"] == oh.loc[got.index, "owner"]).all()
    assert (got["amount"] - oh.loc[got.index, "hours_overdue"]).abs().max() < 1e-9
    as_of = pd.Timestamp("2026-01-01", tz=oh["due_at"].dt.tz)
    days = (as_of - oh.loc[got.index, "due_at"]).dt.total_seconds() / 86400
    assert (got["age_days"] - days).abs().max() < 1e-9
    assert (got["cell_owner"] == cells.loc[got["cell"]].values).all()
    steps = {"leadership": 3, "supervisor": 2, "owner": 1}
    assert (got["urgency"] == got["level"].map(steps)).all()
    assert set(a[a.kind == "sensor_alarm"]["urgency"]) <= {3}
