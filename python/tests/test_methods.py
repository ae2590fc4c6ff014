"""The analysis methods of Dataset, which are written from the registry of
analyses: each runs its analysis with the keywords given and the core's
defaults for the rest, and the method block is what the registry gives."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

import safetyscope

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> safetyscope.Dataset:
    d = tmp_path_factory.mktemp("small")
    safetyscope.generate_sample(str(d), scale=0.2, sites=1)
    return safetyscope.Dataset.open(str(d))


def test_the_generated_methods_are_current() -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-python-methods.py"), "-", "--check"],
        input=json.dumps(safetyscope.analyses()),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_analysis_has_its_method_with_the_registry_keywords() -> None:
    import inspect

    for a in safetyscope.analyses():
        m = getattr(safetyscope.Dataset, a["python"])
        keywords = set(inspect.signature(m).parameters) - {"self"}
        if a["name"] == "targets":
            continue  # hand-written: takes a targets file or list, then **options
        names = {("from_" if o["name"] == "from" else o["name"]) for o in a["options"]}
        names |= {p["name"] for p in a["params"]}
        assert keywords == names, a["name"]
        for o in a["options"]:
            assert f"``{'from_' if o['name'] == 'from' else o['name']}``" in (m.__doc__ or ""), (a["name"], o["name"])


def test_hotspots_rook(small: safetyscope.Dataset) -> None:
    hs = small.hotspots(weights="rook").to_pandas()
    assert (len(hs), int((hs["neighbors"] == 2).sum())) == (36, 4)  # 36 cells, 4 corners


def test_risk_by_site(small: safetyscope.Dataset) -> None:
    rm = small.risk_map(by="site").to_pandas()
    assert int(rm.loc[0, ["red_cells", "orange_cells", "yellow_cells", "blue_cells"]].sum()) == 36


def test_density_resolution(small: safetyscope.Dataset) -> None:
    kd = small.density(site="U01", resolution=2.0).to_pandas()
    assert len(kd) == 900  # a 60 m × 60 m plan at 2 m


def test_peaks_find_the_planted_night_hours(tmp_path: pathlib.Path) -> None:
    safetyscope.generate_sample(str(tmp_path), scale=0.3, sites=2)
    roster = [("day", "08:00", "20:00", 1.0), ("night", "20:00", "08:00", 0.5)]
    top = (
        safetyscope.Dataset.open(str(tmp_path))
        .peaks(grid="hour", exposure="shifts", shifts=roster, weekday_factors=[1, 1, 1, 1, 1, 0.8, 0.6])
        .to_pandas()
    )
    assert (2, 4) in list(zip(top["hour_from"], top["hour_to"]))


def test_trends_months(small: safetyscope.Dataset) -> None:
    t = small.trends().to_pandas()
    assert (len(t), t["month"].iloc[0]) == (24, "2024-01")


def test_knox_without_permutations(small: safetyscope.Dataset) -> None:
    k = small.knox(permutations=0).to_pandas()
    assert int(k["statistic"][0]) <= int(k["close_space"][0])


def test_kpis_trir_from_its_parts(small: safetyscope.Dataset) -> None:
    k = small.kpis(periods=["year"], scopes=["group"], kpis=["trir"]).to_pandas()
    row = k[k.period == "2025"].iloc[0]
    assert abs(row.value - row.numerator * 200_000 / row.denominator) < 1e-9


def test_alerts_repeats(tmp_path: pathlib.Path) -> None:
    safetyscope.generate_sample(str(tmp_path), scale=0.1, sites=1)
    r = (
        safetyscope.Dataset.open(str(tmp_path))
        .alerts(list="repeats", from_="2025-03-01", as_of="2025-04-01")
        .to_pandas()
    )
    assert ("U01-P0001", "no_helmet", 4) in set(zip(r.person_id, r.kind, r.days))


def test_a_string_where_a_list_is_expected_is_one_item(small: safetyscope.Dataset) -> None:
    a = small.heatmap(kinds="hazards").to_pandas()
    b = small.heatmap(kinds=["hazards"]).to_pandas()
    assert a.equals(b)


def test_unknown_keywords_raise_option_error(small: safetyscope.Dataset) -> None:
    with pytest.raises(safetyscope.OptionError, match="colour"):
        small.run("risk", colour="red")
    with pytest.raises(TypeError):
        small.risk_map(colour="red")  # type: ignore[call-arg]


def test_tuples_are_lists_and_only_shifts_are_shifts(small: safetyscope.Dataset) -> None:
    # A tuple where a list of numbers is expected is that list, not a shift.
    boxed = small.density(site="U01", bbox=(0, 0, 30, 30), resolution=3.0).to_pandas()
    assert len(boxed) == 100  # a 30 m × 30 m box at 3 m: 10 × 10 cells
    # Shifts as tuples, with and without the headcount.
    s = small.shift_profile(shifts=[("A", "06:00", "18:00"), ("B", "18:00", "06:00", 0.5)]).to_pandas()
    assert set(s["shift"].dropna()) == {"A", "B"}
