"""An independent oracle for targets, written in pandas and scipy from
docs/analyses.md ("Targets") and docs/kpis.md: elapsed share, actual,
effective target from a relative baseline, expected value (pro rata and
seasonal), projection, probability and status, at several as-of dates."""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest
from scipy.stats import poisson

import safetyscope

TZ = "Asia/Shanghai"
KIND = {"trir": "rate", "fatalities": "count", "training_coverage": "cumulative",
        "rectification_rate": "rate", "hazards_found": "count", "incidents": "count"}


class Facts:
    """A dataset's rows, for KPIs over [a, b) at group scope."""

    def __init__(self, path=None, tables=None):
        read = (lambda t: pd.read_parquet(path / f"{t}.parquet")) if path else tables.__getitem__
        self.inc = read("incidents")
        self.exp = read("exposure")
        self.hz = read("hazards")
        self.act = read("activities")

    def hours(self, a, b) -> float:
        e = self.exp
        overlap = (e.period_end.clip(upper=b) - e.period_start.clip(lower=a)).dt.total_seconds().clip(lower=0)
        length = (e.period_end - e.period_start).dt.total_seconds()
        return float((e.hours_worked * overlap / length).sum())

    def heads(self, a, b) -> float:
        e = self.exp
        overlap = (e.period_end.clip(upper=b) - e.period_start.clip(lower=a)).dt.total_seconds().clip(lower=0)
        return float((e.headcount * overlap).sum() / (b - a).total_seconds())

    def value(self, kpi, a, b):
        if b <= a:
            return None
        i = self.inc[(self.inc.occurred_at >= a) & (self.inc.occurred_at < b)]
        if kpi == "trir":
            h = self.hours(a, b)
            injury = i.severity.isin(["minor", "serious", "fatal"])
            rec = i.recordable.where(i.recordable.notna(), injury).astype(bool)
            return rec.sum() * 200_000 / h if h > 0 else None
        if kpi == "incidents":
            return float(len(i))
        if kpi == "fatalities":
            return float((i.severity == "fatal").sum())
        if kpi == "hazards_found":
            return float(((self.hz.reported_at >= a) & (self.hz.reported_at < b)).sum())
        if kpi == "rectification_rate":
            found = self.hz[(self.hz.reported_at >= a) & (self.hz.reported_at < b)]
            closed = found.closed_at.notna() & (found.closed_at < b)
            return closed.sum() / len(found) if len(found) else None
        if kpi == "training_coverage":
            t = self.act[(self.act.kind == "training") & (self.act["at"] >= a) & (self.act["at"] < b) & self.act.person_id.notna()]
            people = len(t[["site", "person_id"]].drop_duplicates())
            heads = self.heads(a, b)
            return people / heads if heads > 0 else None
        raise KeyError(kpi)


def bounds(label: str):
    if "-Q" in label:
        y, q = label.split("-Q")
        a = pd.Timestamp(year=int(y), month=3 * int(q) - 2, day=1, tz=TZ)
        return a, a + pd.DateOffset(months=3)
    if "-" in label:
        a = pd.Timestamp(label + "-01", tz=TZ)
        return a, a + pd.DateOffset(months=1)
    a = pd.Timestamp(year=int(label), month=1, day=1, tz=TZ)
    return a, a + pd.DateOffset(years=1)


def last_year(label: str) -> str:
    y, rest = label[:4], label[4:]
    return f"{int(y) - 1}{rest}"


def meets(v, target, at_most):
    return v <= target if at_most else v >= target


def oracle(f: Facts, t: dict, as_of: str, expectation="pro_rata", tolerance=0.1) -> dict:
    now = pd.Timestamp(as_of, tz=TZ)
    a, e = bounds(t["period"])
    kind = KIND[t["kpi"]]
    at_most = t["direction"] == "at_most"
    elapsed = min(max((now - a) / (e - a), 0.0), 1.0)
    target = t["target"]
    base = t.get("baseline")
    if base and "%" in base:
        pct = float(base.split("%")[0])
        ref = f.value(t["kpi"], *bounds(last_year(t["period"])))
        target = ref * (1 + pct / 100)
    actual = f.value(t["kpi"], a, min(now, e))
    share = elapsed
    if expectation == "seasonal" and kind == "count":
        la, le = bounds(last_year(t["period"]))
        whole = f.value(t["kpi"], la, le)
        # The same point of last year's period: the same elapsed share of it.
        point = la + (le - la) * elapsed
        share = (f.value(t["kpi"], la, point) or 0.0) / whole if whole else elapsed
    expected = target if kind == "rate" else target * share
    out = {"effective_target": target, "elapsed": elapsed, "actual": actual, "expected": expected,
           "projection": None, "probability": None}
    if actual is None:
        out["status"] = "no_data"
        return out
    # Nothing to extrapolate from at share 0: the projection is the actual.
    out["projection"] = actual if kind == "rate" or share == 0 or elapsed >= 1 else actual / share
    if now >= e:
        out["status"] = "achieved" if meets(actual, target, at_most) else "missed"
        return out
    if kind == "count":
        if at_most and actual > target:
            out["status"] = "missed"
            return out
        if not at_most and actual >= target:
            out["status"] = "achieved"
            return out
        # Expected in the rest of the period: at the pace so far over the
        # share still to come, or last year's count over it before any event.
        if actual > 0 and share > 0:
            mu = actual / share * (1 - share)
        else:
            la, le = bounds(last_year(t["period"]))
            mu = f.value(t["kpi"], la, le) * (1 - share)
        room = target - actual
        p = poisson.cdf(math.floor(room), mu) if at_most else poisson.sf(math.ceil(room) - 1, mu)
        out["probability"] = p
        out["status"] = "on_track" if p >= 0.8 else "at_risk" if p >= 0.5 else "off_track"
        return out
    proj = out["projection"]
    if meets(proj, target, at_most):
        out["status"] = "on_track"
    elif abs(proj - target) <= tolerance * abs(target):
        out["status"] = "at_risk"
    else:
        out["status"] = "off_track"
    return out


def compare(got: pd.DataFrame, targets: list[dict], f: Facts, as_of: str, **kw):
    assert len(got) == len(targets)
    for t, row in zip(targets, got.itertuples()):
        want = oracle(f, t, as_of, **kw)
        label = f"{t['kpi']} {t['period']} as of {as_of}"
        assert row.status == want["status"], label
        for c in ("effective_target", "elapsed", "actual", "expected", "projection", "probability"):
            g, w = getattr(row, c), want[c]
            if w is None or (isinstance(w, float) and math.isnan(w)):
                assert g is None or pd.isna(g), f"{label}: {c} = {g}"
            else:
                assert g == pytest.approx(w, rel=1e-9, abs=1e-12), f"{label}: {c}"


SAMPLE_TARGETS = [
    {"kpi": "trir", "scope": "group", "period": "2025", "target": 0.0, "direction": "at_most", "baseline": "-20% vs 2024"},
    {"kpi": "trir", "scope": "group", "period": "2025-Q1", "target": 0.0, "direction": "at_most", "baseline": "-20% vs 2024"},
    {"kpi": "trir", "scope": "group", "period": "2025-Q3", "target": 0.0, "direction": "at_most", "baseline": "-20% vs 2024"},
    {"kpi": "fatalities", "scope": "group", "period": "2025", "target": 0.0, "direction": "at_most"},
    {"kpi": "hazards_found", "scope": "group", "period": "2025", "target": 1000.0, "direction": "at_least"},
    {"kpi": "hazards_found", "scope": "group", "period": "2025-Q2", "target": 90.0, "direction": "at_most"},
    # Incidents exist in both years: the seasonal expectation uses last
    # year's profile (summer-heavy), not the elapsed share.
    {"kpi": "incidents", "scope": "group", "period": "2025", "target": 3200.0, "direction": "at_most"},
    {"kpi": "incidents", "scope": "group", "period": "2025-Q3", "target": 700.0, "direction": "at_most"},
    {"kpi": "rectification_rate", "scope": "group", "period": "2025", "target": 0.97, "direction": "at_least"},
    {"kpi": "training_coverage", "scope": "group", "period": "2025", "target": 1.0, "direction": "at_least"},
]


@pytest.mark.parametrize("as_of", ["2025-03-15", "2025-05-20 12:00", "2025-07-01", "2025-12-20", "2026-01-01"])
@pytest.mark.parametrize("expectation", ["pro_rata", "seasonal"])
def test_targets_equal_the_rules(sample, as_of, expectation):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    got = ds.track_targets(targets=SAMPLE_TARGETS, as_of=as_of, expectation=expectation).to_pandas()
    compare(got, SAMPLE_TARGETS, Facts(path), as_of, expectation=expectation)
    if expectation == "seasonal" and as_of == "2025-07-01":
        pro = ds.track_targets(targets=SAMPLE_TARGETS, as_of=as_of).to_pandas()
        rows = [i for i, t in enumerate(SAMPLE_TARGETS) if t["kpi"] == "incidents" and t["period"] == "2025"]
        assert got.expected[rows[0]] != pytest.approx(pro.expected[rows[0]], rel=1e-6)


NYC_TARGETS = [
    {"kpi": "hazards_found", "scope": "group", "period": "2018", "target": 500.0, "direction": "at_least"},
    {"kpi": "hazards_found", "scope": "group", "period": "2018-Q3", "target": 150.0, "direction": "at_most"},
    {"kpi": "rectification_rate", "scope": "group", "period": "2018", "target": 0.9, "direction": "at_least"},
    {"kpi": "rectification_rate", "scope": "group", "period": "2019", "target": 0.0, "direction": "at_least",
     "baseline": "+5% vs 2018"},
]


@pytest.mark.parametrize("as_of", ["2018-02-10", "2018-08-15 09:30", "2019-01-01", "2019-06-30"])
@pytest.mark.parametrize("expectation", ["pro_rata", "seasonal"])
def test_targets_on_the_real_service_requests(repo, as_of, expectation, monkeypatch):
    # Real NYC 311 requests as hazards (America/New_York), read through
    # their mapping; the oracle takes the accepted canonical rows.
    monkeypatch.setattr(sys.modules[__name__], "TZ", "America/New_York")
    ds = safetyscope.Dataset.open(repo / "examples/real/nyc311-hazards.toml")
    empty = {t: ds.table(t).to_pandas() for t in ("incidents", "exposure", "activities")}
    f = Facts(tables={**empty, "hazards": ds.table("hazards").to_pandas()})
    got = ds.track_targets(targets=NYC_TARGETS, as_of=as_of, expectation=expectation).to_pandas()
    compare(got, NYC_TARGETS, f, as_of, expectation=expectation)


def test_a_time_of_day_as_of_counts_that_day_to_the_instant():
    """An as-of with a time of day counts that day's incidents before it and
    none after: the per-day counts are split at the instant (the oracle:
    pandas on the instants). Before, all of the day's incidents counted from
    its first one on."""
    times = pd.to_datetime(
        ["2025-03-01 23:30", "2025-03-02 09:00", "2025-03-02 11:59", "2025-03-02 12:00", "2025-03-02 15:00"]
    ).tz_localize(TZ)
    inc = pd.DataFrame({"id": [f"I{i}" for i in range(5)], "occurred_at": times, "site": "U01",
                        "category": "other", "severity": "near_miss"})
    ds = safetyscope.Dataset.from_tables(incidents=inc, timezone=TZ)
    target = [{"kpi": "incidents", "scope": "group", "period": "2025", "target": 100.0, "direction": "at_most"}]
    for as_of in ["2025-03-02 09:00", "2025-03-02 09:30", "2025-03-02 12:00", "2025-03-02 12:01", "2025-03-03"]:
        got = ds.track_targets(targets=target, as_of=as_of).to_pandas().actual[0]
        assert got == (times < pd.Timestamp(as_of, tz=TZ)).sum(), as_of
