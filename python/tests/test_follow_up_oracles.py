"""Independent oracles, written in pandas from docs/analyses.md, for the
follow-up results that had none: the safety points ledger and the
escalation ladder of overdue hazards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import safetyscope

TZ = "Asia/Shanghai"
HOUR = pd.Timedelta(hours=1)

# docs/analyses.md, "Safety points ledger".
BASE, FLOOR = 100.0, 60.0
REWARD = {"general": 2.0, "major": 10.0}
PENALTY = {"no_helmet": 5.0, "no_vest": 3.0, "phone": 3.0, "no_harness": 10.0, "smoking": 10.0, "intrusion": 10.0}
OTHER_PENALTY = 5.0

# docs/analyses.md, "Overdue hazards": hours after the deadline at which
# each level takes over.
LADDER = {
    "general": [(0.0, "owner"), (24.0, "supervisor"), (72.0, "leadership")],
    "major": [(0.0, "owner"), (8.0, "supervisor"), (24.0, "leadership")],
}


def write_hazards(d, rows) -> None:
    """A hazards table of `(id, reported_at, level, reporter, due_at)` rows at site S1."""
    lines = ["id,reported_at,site,category,level,reporter,due_at"]
    lines += [f"{i},{t},S1,fire,{level},{who},{due}" for i, t, level, who, due in rows]
    (d / "hazards.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def ledger_oracle(path, as_of: str, floor: float = FLOOR) -> pd.DataFrame:
    """Per person and month of the year of `as_of` (up to its month): the
    points of the hazards they reported and the violations they were caught
    in before `as_of`, the running total from the base, and the flag below
    the floor. People with no such record have no rows."""
    end = pd.Timestamp(as_of, tz=TZ)
    last = end - pd.Timedelta(microseconds=1)
    start = pd.Timestamp(year=last.year, month=1, day=1, tz=TZ)
    hz = pd.read_parquet(path / "hazards.parquet")
    hz = hz[hz.reporter.notna() & (hz.reported_at >= start) & (hz.reported_at < end)]
    v = pd.read_parquet(path / "violations.parquet")
    v = v[v.person_id.notna() & (v.detected_at >= start) & (v.detected_at < end)]
    events = pd.concat(
        [
            pd.DataFrame({
                "site": hz.site, "person_id": hz.reporter,
                "month": hz.reported_at.dt.tz_convert(TZ).dt.month,
                "rewards": hz.level.map(REWARD).astype(float), "penalties": 0.0,
            }),
            pd.DataFrame({
                "site": v.site, "person_id": v.person_id,
                "month": v.detected_at.dt.tz_convert(TZ).dt.month,
                "rewards": 0.0, "penalties": v.kind.map(PENALTY).fillna(OTHER_PENALTY).astype(float),
            }),
        ]
    )
    sums = events.groupby(["site", "person_id", "month"])[["rewards", "penalties"]].sum()
    people = events[["site", "person_id"]].drop_duplicates()
    months = pd.DataFrame({"month": range(1, last.month + 1)})
    grid = people.merge(months, how="cross").set_index(["site", "person_id", "month"])
    out = grid.join(sums).fillna(0.0).reset_index().sort_values(["site", "person_id", "month"])
    out["change"] = out.rewards - out.penalties
    out["total"] = BASE + out.groupby(["site", "person_id"]).change.cumsum()
    out["below_floor"] = out.total < floor
    out["month"] = [f"{last.year}-{m:02d}" for m in out.month]
    return out.reset_index(drop=True)


@pytest.mark.parametrize("as_of", ["2025-03-10", "2025-07-01", "2025-12-31 18:00", "2026-01-01"])
def test_points_ledger_equals_the_rules(sample, as_of):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    got = ds.alerts(list="points", as_of=as_of).to_pandas()
    got = got.sort_values(["site", "person_id", "month"]).reset_index(drop=True)
    want = ledger_oracle(path, as_of)
    assert len(got) == len(want) > 0
    for c in ["site", "person_id", "month"]:
        assert got[c].tolist() == want[c].tolist(), c
    for c in ["rewards", "penalties", "change", "total"]:
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=0, atol=1e-9, err_msg=c)
    assert got.below_floor.tolist() == want.below_floor.tolist()


@pytest.mark.parametrize("as_of", ["2025-07-01", "2026-01-01"])
def test_low_points_alerts_equal_the_rules(sample, as_of):
    """The `low_points` alerts are the people whose total at the ledger's
    last month is below the floor, sorted by site and person, each with
    that total and the floor. The floor is raised to the base so that the
    sample's people with more penalties than rewards are flagged."""
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    floor = BASE
    got = ds.alerts(as_of=as_of, points={"floor": floor}).to_pandas()
    got = got[got.kind == "low_points"].reset_index(drop=True)
    want = ledger_oracle(path, as_of, floor)
    want = want[want.month == want.month.max()]
    want = want[want.below_floor].sort_values(["site", "person_id"]).reset_index(drop=True)
    assert len(got) == len(want) > 0
    assert got.site.tolist() == want.site.tolist()
    assert got.subject.tolist() == want.person_id.tolist()
    np.testing.assert_allclose(got.amount.to_numpy(), want.total.to_numpy(), rtol=0, atol=1e-9)
    assert (got.limit == floor).all()
    assert (got.since == want.month.iloc[0]).all()


def test_the_points_ledger_flags_and_carries_over(tmp_path):
    """A hand-made case: one person's total crosses the floor in February
    and carries into March (month rollover), another earns rewards."""
    d = tmp_path / "hand"
    d.mkdir()
    (d / "violations.csv").write_text(
        "id,detected_at,site,kind,person_id\n"
        + "".join(f"v{i},2025-02-{i + 1:02d} 09:00,S1,smoking,P1\n" for i in range(4))
        + "v9,2025-01-31 23:30,S1,mystery,P1\n",
        encoding="utf-8",
    )
    write_hazards(d, [("h1", "2025-03-01 00:10", "major", "P2", "2025-03-08"),
                      ("h2", "2025-03-02 10:00", "general", "P2", "2025-03-05")])
    ds = safetyscope.Dataset.open(d)
    got = ds.alerts(list="points", as_of="2025-04-01").to_pandas().set_index(["person_id", "month"])
    # P1: January −5 (unknown kind), February −40 (four smoking) → 55, flagged; March carries 55.
    assert got.loc[("P1", "2025-01"), "total"] == 95.0
    assert got.loc[("P1", "2025-02"), "total"] == 55.0 and got.loc[("P1", "2025-02"), "below_floor"]
    assert got.loc[("P1", "2025-03"), "total"] == 55.0 and got.loc[("P1", "2025-03"), "below_floor"]
    assert got.loc[("P2", "2025-03"), "rewards"] == 12.0
    assert got.loc[("P2", "2025-03"), "total"] == 112.0
    assert list(ds.alerts(list="points", as_of="2025-04-01").to_pandas().month.unique()) == [
        "2025-01", "2025-02", "2025-03"
    ]


def ladder_oracle(hz: pd.DataFrame, as_of: str) -> pd.DataFrame:
    now = pd.Timestamp(as_of, tz=TZ)
    late = hz[(hz.reported_at < now) & (hz.due_at < now) & (hz.closed_at.isna() | (hz.closed_at >= now))].copy()
    late["hours_overdue"] = (now - late.due_at) / HOUR
    late["age_hours"] = (now - late.reported_at) / HOUR

    def step(row) -> tuple[str, int]:
        level, n = "", 0
        for i, (after, who) in enumerate(LADDER[row.level]):
            if row.hours_overdue >= after:
                level, n = who, i + 1
        return level, n

    steps = late.apply(step, axis=1, result_type="expand")
    late["escalation"], late["escalation_step"] = steps[0], steps[1]
    return late.sort_values("id").reset_index(drop=True)


@pytest.mark.parametrize("as_of", ["2025-02-01", "2025-06-15 13:00", "2025-11-30 23:59", "2026-01-01"])
def test_escalation_ladder_equals_the_rules(sample, as_of):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    got = ds.alerts(list="overdue", as_of=as_of).to_pandas().sort_values("id").reset_index(drop=True)
    want = ladder_oracle(pd.read_parquet(path / "hazards.parquet"), as_of)
    assert len(got) == len(want) > 0
    assert got.id.tolist() == want.id.tolist()
    np.testing.assert_allclose(got.hours_overdue, want.hours_overdue, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.age_hours, want.age_hours, rtol=0, atol=1e-6)
    assert got.escalation.tolist() == want.escalation.tolist()
    assert got.escalation_step.tolist() == want.escalation_step.astype(int).tolist()


@pytest.mark.parametrize(
    "hours_after, general, major",
    [
        (1, ("owner", 1), ("owner", 1)),
        (8, ("owner", 1), ("supervisor", 2)),
        (23.9, ("owner", 1), ("supervisor", 2)),
        (24, ("supervisor", 2), ("leadership", 3)),
        (71, ("supervisor", 2), ("leadership", 3)),
        (72, ("leadership", 3), ("leadership", 3)),
        (500, ("leadership", 3), ("leadership", 3)),
    ],
)
def test_both_ladders_step_at_their_hours(tmp_path, hours_after, general, major):
    d = tmp_path / "ladder"
    d.mkdir()
    write_hazards(d, [("g", "2025-03-01 08:00", "general", "P1", "2025-03-04 08:00"),
                      ("m", "2025-03-01 08:00", "major", "P1", "2025-03-04 08:00")])
    ds = safetyscope.Dataset.open(d)
    as_of = (pd.Timestamp("2025-03-04 08:00") + pd.Timedelta(hours=hours_after)).strftime("%Y-%m-%d %H:%M:%S")
    got = ds.alerts(list="overdue", as_of=as_of).to_pandas().set_index("id")
    hz = pd.read_csv(d / "hazards.csv", parse_dates=["reported_at", "due_at"])
    for c in ("reported_at", "due_at"):
        hz[c] = hz[c].dt.tz_localize(TZ)
    hz["closed_at"] = pd.Series(pd.NaT, index=hz.index, dtype=f"datetime64[ns, {TZ}]")
    want = ladder_oracle(hz, as_of).set_index("id")
    for hid, expected in (("g", general), ("m", major)):
        assert (got.loc[hid, "escalation"], got.loc[hid, "escalation_step"]) == expected
        assert (want.loc[hid, "escalation"], want.loc[hid, "escalation_step"]) == expected
        assert got.loc[hid, "hours_overdue"] == pytest.approx(hours_after, abs=1e-3)
