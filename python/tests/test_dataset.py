"""The Python surface against independent pandas computations."""

from __future__ import annotations

import importlib.util
import pathlib

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import safetyscope


def pandas_cell_counts(sample: pathlib.Path, site: str) -> pd.Series:
    inc = pq.read_table(sample / "incidents.parquet").to_pandas()
    return inc[inc.site == site].groupby("cell").size()


def test_heatmap_equals_pandas_groupby(sample):
    path, truth = sample
    ds = safetyscope.Dataset.open(path)
    hm = ds.heatmap(site="U02").to_pandas()
    assert len(hm) == 36
    assert list(hm.columns[:7]) == ["site", "zone", "cell", "row", "col", "owner", "in_plan"]
    expected = pandas_cell_counts(path, "U02")
    got = hm.set_index("cell")["events"]
    assert got.sum() == expected.sum()
    for cell, n in expected.items():
        assert got[cell] == n, cell
    # Cells without incidents are explicit zeros, never missing.
    assert set(got.index) == {f"U02-{r}{c}" for r in "ABCDEF" for c in range(1, 7)}


def test_heatmap_window_and_kinds_equal_pandas(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    hm = ds.heatmap(site="U01", kinds=["incidents", "hazards"], from_="2025-03-01", to="2025-06-01").to_pandas()
    tz = "Asia/Shanghai"
    lo, hi = pd.Timestamp("2025-03-01", tz=tz), pd.Timestamp("2025-06-01", tz=tz)
    inc = pq.read_table(path / "incidents.parquet").to_pandas()
    haz = pq.read_table(path / "hazards.parquet").to_pandas()
    n_inc = ((inc.site == "U01") & (inc.occurred_at >= lo) & (inc.occurred_at < hi)).sum()
    n_haz = ((haz.site == "U01") & (haz.reported_at >= lo) & (haz.reported_at < hi)).sum()
    assert hm.incidents.sum() == n_inc
    assert hm.hazards.sum() == n_haz
    assert hm.events.sum() == n_inc + n_haz


def test_from_tables_accepts_pandas_polars_pyarrow(sample):
    path, _ = sample
    inc = pq.read_table(path / "incidents.parquet")
    cells = pq.read_table(path / "cells.parquet")
    ref = safetyscope.Dataset.open(path).heatmap().to_pandas()[["cell", "events"]].reset_index(drop=True)
    for make in (lambda t: t, lambda t: t.to_pandas(), lambda t: pl.from_arrow(t)):
        ds = safetyscope.Dataset.from_tables(incidents=make(inc), cells=make(cells))
        got = ds.heatmap().to_pandas()[["cell", "events"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ref)


def test_results_convert_without_pyarrow_specific_paths(sample):
    path, _ = sample
    r = safetyscope.Dataset.open(path).sql("select site, count(*) as n from cells group by site order by site")
    assert r.num_rows == 3 and r.columns == ["site", "n"]
    t = pa.table(r)
    assert t.column("n").to_pylist() == [36, 36, 36]
    assert pl.DataFrame(r)["n"].to_list() == [36, 36, 36]
    assert r.to_pandas()["site"].tolist() == ["U01", "U02", "U03"]
    assert "<table>" in r._repr_html_()


def test_chart_displays_and_saves(sample, tmp_path):
    path, _ = sample
    chart = safetyscope.Dataset.open(path).heatmap(site="U03").plot()
    assert chart is not None
    assert chart._repr_svg_().startswith("<svg")
    assert chart.svg.count('class="cell"') == 36
    chart.save(tmp_path / "u03.svg")
    assert (tmp_path / "u03.svg").read_text(encoding="utf-8") == chart.svg
    with pytest.raises(safetyscope.OptionError):
        chart.save(tmp_path / "u03.gif")


def test_typed_exceptions(sample, tmp_path):
    path, _ = sample
    with pytest.raises(safetyscope.NotFoundError) as e:
        safetyscope.Dataset.open(tmp_path / "nope")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, safetyscope.SafetyscopeError)
    bad = tmp_path / "bad.toml"
    bad.write_text('[tables.incidents]\npath = "x.csv"\n[tables.incidents.columns]\nwhen = "T"\n')
    with pytest.raises(safetyscope.MappingError, match="`when` is not a column of `incidents`") as e2:
        safetyscope.Dataset.open(bad)
    assert isinstance(e2.value, ValueError)
    ds = safetyscope.Dataset.open(path)
    with pytest.raises(safetyscope.QueryError):
        ds.sql("select nope from incidents")
    with pytest.raises(safetyscope.OptionError, match="yesterday"):
        ds.heatmap(from_="yesterday")
    with pytest.raises(safetyscope.SchemaError, match="occurred_at"):
        safetyscope.Dataset.from_tables(incidents=pa.table({"id": ["1"], "site": ["S"]}))


def test_bad_rows_are_counted_not_dropped():
    t = pa.table(
        {
            "id": ["1", "2", "1", "4"],
            "occurred_at": ["2025-01-01 08:00", "2025-01-02 08:00", "2025-01-03 08:00", "someday"],
            "site": ["S1"] * 4,
            "category": ["fire", "fire", "fire", "fire"],
            "severity": ["minor", "catastrophic", "minor", "minor"],
        }
    )
    ds = safetyscope.Dataset.from_tables(incidents=t)
    v = ds.validation
    assert v.tables["incidents"]["rows_read"] == 4
    assert v.tables["incidents"]["rows_accepted"] == 1
    assert v.rejected_counts("incidents") == {"unparseable": 1, "unknown_enum": 1, "duplicate_id": 1}
    ex = v.tables["incidents"]["rejected"]["unknown_enum"]["examples"][0]
    assert (ex["row"], ex["column"], ex["value"]) == (2, "severity", "catastrophic")
    assert ds.heatmap().validation.rows_rejected() == 3


def _load_fixture_module(repo: pathlib.Path):
    spec = importlib.util.spec_from_file_location("mine_expected", repo / "tests/fixtures/mine_accidents_expected.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mine_accidents_mapping_equals_pandas(repo):
    expected = _load_fixture_module(repo).expected()
    ds = safetyscope.Dataset.open(repo / "examples/real/mine-accidents.toml")
    t = ds.validation.tables["incidents"]
    assert t["rows_read"] == expected["rows_read"]
    assert t["rows_accepted"] == expected["rows_accepted"]
    assert ds.validation.rejected_counts("incidents") == expected["rejected"]
    assert t["time_unknown"] == expected["time_unknown"]
    inc = ds.table("incidents").to_pandas()
    assert inc.severity.value_counts().sort_index().to_dict() == expected["by_severity"]
    known = inc[inc.time_known]
    by_hour = known.occurred_at.dt.hour.value_counts().sort_index()
    assert {str(k): int(v) for k, v in by_hour.items()} == expected["by_hour"]
    assert int(inc.lost_days.fillna(0).sum()) == expected["lost_days_total"]


def test_mapping_paths_stay_beside_the_mapping(repo, tmp_path):
    src = repo / "examples/real/mine-accidents.toml"
    csv = repo / "examples/real/mine-accidents/msha_accidents_2000-2015_sample.csv"
    text = src.read_text(encoding="utf-8").replace(
        'path = "mine-accidents/msha_accidents_2000-2015_sample.csv"', f'path = "{csv.as_posix()}"'
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(safetyscope.MappingError, match="absolute path"):
        safetyscope.Dataset.open(mapping)
    safetyscope.set_allow_outside(True)
    try:
        ds = safetyscope.Dataset.open(mapping)
        assert ds.validation.tables["incidents"]["rows_read"] > 0
    finally:
        safetyscope.set_allow_outside(False)
    with pytest.raises(safetyscope.MappingError):
        safetyscope.Dataset.open(mapping)


def test_a_missing_table_file_keeps_its_kind(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[tables.incidents]\npath = "gone.csv"\n', encoding="utf-8")
    with pytest.raises(safetyscope.NotFoundError, match="gone.csv"):
        safetyscope.Dataset.open(mapping)


def test_every_internal_method_is_wrapped():
    raw = safetyscope._internal
    wrapped = {
        "RawDataset": safetyscope.Dataset,
        "RawResult": safetyscope.Result,
    }
    internal_to_public = {"table_names": "tables", "validation_json": "validation", "column_names": "columns", "svg": "plot", "patterns": "time_profile"}
    for cls_name, public in wrapped.items():
        cls = getattr(raw, cls_name)
        for name in dir(cls):
            if name.startswith("_"):
                continue
            target = internal_to_public.get(name, name)
            assert hasattr(public, target), f"{cls_name}.{name} is not exposed as {public.__name__}.{target}"
    for fn in ("generate_sample", "data_model_markdown", "ingest"):
        assert hasattr(safetyscope, fn)
    # `patterns` serves one public method per view.
    for method in ("time_profile", "peaks", "trends", "shift_profile", "shift_events", "pareto", "crosstab", "pyramid",
                   "overdue_hazards", "repeat_violators", "fence_intrusions", "alarm_episodes", "points_ledger"):
        assert callable(getattr(safetyscope.Dataset, method))


def test_heatmap_roll_ups_sum_the_cells(sample):
    path, _ = sample
    ds = safetyscope.Dataset.open(path)
    cells = ds.heatmap(kinds=["incidents", "violations"]).to_pandas()
    zones = ds.heatmap(kinds=["incidents", "violations"], by="zone").to_pandas().set_index(["site", "zone"])
    want = cells.groupby(["site", "zone"])[["incidents", "violations", "events"]].sum()
    pd.testing.assert_frame_equal(zones[["incidents", "violations", "events"]], want, check_dtype=False)
    assert (zones.cells == 12).all()
    sites = ds.heatmap(by="site")
    assert sites.num_rows == 3 and sites.plot() is None


def test_results_are_exported_without_copies(sample):
    """The Arrow C stream hands out the engine's own buffers: two exports of
    the same table share memory, and polars and pandas (for numeric columns
    through pyarrow) read those buffers in place."""
    import polars as pl
    import pyarrow as pa

    ds = safetyscope.Dataset.open(sample[0])
    res = ds.table("incidents")
    a, b = res.to_arrow(), pa.table(res)
    xa = a.column("x").chunk(0).buffers()[1]
    xb = b.column("x").chunk(0).buffers()[1]
    assert xa.address == xb.address and xa.size >= 8 * len(a.column("x").chunk(0))
    p = pl.DataFrame(res)
    xp = p["x"].to_arrow().buffers()[1]
    assert xp.address == xa.address
    # Importing the whole positions table allocates nothing in pyarrow's
    # memory pool: its buffers stay the engine's.
    before = pa.total_allocated_bytes()
    tables = [pa.table(ds.table("positions")) for _ in range(5)]
    assert tables[0].nbytes > 100_000
    assert pa.total_allocated_bytes() - before == 0


def test_a_store_reads_like_its_files(sample, tmp_path):
    data, _ = sample
    m = safetyscope.ingest(data, tmp_path / "store", rows_per_file=1000)
    files = safetyscope.Dataset.open(data)
    store = safetyscope.Dataset.open(tmp_path / "store")
    inc = m["tables"]["incidents"]
    assert len(inc["files"]) == -(-inc["rows"] // 1000)
    # The same rows, the same report, the same results.
    a = files.table("incidents").to_pandas().sort_values("id").reset_index(drop=True)
    b = store.table("incidents").to_pandas().sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert store.validation.to_dict() == files.validation.to_dict()
    pd.testing.assert_frame_equal(
        files.risk_map(half_life_days=30).to_pandas(), store.risk_map(half_life_days=30).to_pandas()
    )
    pd.testing.assert_frame_equal(files.kpis().to_pandas(), store.kpis().to_pandas())
    # Errors are typed and name the problem.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("x")
    with pytest.raises(safetyscope.OptionError, match="not a store"):
        safetyscope.ingest(data, tmp_path / "notes")
    with pytest.raises(safetyscope.OptionError, match="positive number of rows"):
        safetyscope.ingest(data, tmp_path / "store2", rows_per_file=0)
    assert not (tmp_path / "store2").exists()
    with pytest.raises(safetyscope.OptionError, match="Asia/Shanghai"):
        safetyscope.Dataset.open(tmp_path / "store", timezone="Europe/Berlin")


def test_sql_is_read_only_unless_allowed(tmp_path: "pathlib.Path") -> None:
    import safetyscope

    safetyscope.generate_sample(str(tmp_path / "s"), scale=0.05, sites=1)
    ds = safetyscope.Dataset.open(str(tmp_path / "s"))
    target = tmp_path / "leak.csv"
    with pytest.raises(safetyscope.OptionError, match="only queries run here"):
        ds.sql(f"COPY (SELECT 1 AS a) TO '{target}'")
    assert not target.exists()
    assert ds.sql("select count(*) as n from cells").num_rows == 1
    ds.sql(f"COPY (SELECT 1 AS a) TO '{target}'", allow_write=True).num_rows
    assert target.exists()
