"""A site plan of polygons from a mapping's `[[polygons]]`: point-in-polygon
binning against shapely, and Gi* with polygon contiguity (queen: a shared
vertex, rook: a shared edge) against esda on libpysal's bundled Columbus
neighbourhoods."""

from __future__ import annotations

import json
import pathlib
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
from esda.getisord import G_Local
from libpysal import examples
from libpysal.weights import Queen, Rook

import safetyscope

COLUMBUS_JSON = pathlib.Path(examples.get_path("columbus.json"))
COLUMBUS_SHP = examples.get_path("columbus.shp")


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[shapely.Geometry], pd.DataFrame]:
    d = tmp_path_factory.mktemp("columbus")
    shutil.copy(COLUMBUS_JSON, d / "columbus.json")
    features = json.loads(COLUMBUS_JSON.read_text())["features"]
    polys = [shapely.geometry.shape(f["geometry"]) for f in features]
    # Events: round(CRIME) random points inside each neighbourhood, plus 7
    # points outside every polygon.
    rng = np.random.default_rng(7)
    rows = []
    for f, poly in zip(features, polys):
        n = int(round(f["properties"]["CRIME"]))
        x0, y0, x1, y1 = poly.bounds
        placed = 0
        while placed < n:
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if poly.contains(shapely.Point(x, y)):
                rows.append((x, y))
                placed += 1
    rows += [(0.0, 0.0), (100.0, 100.0), (-5.0, 20.0), (30.0, 30.0), (5.0, 5.0), (50.0, -1.0), (8.0, 40.0)]
    ev = pd.DataFrame(rows, columns=["x", "y"])
    ev.insert(0, "id", [f"E{i}" for i in range(len(ev))])
    ev["occurred_at"] = "2025-03-01 08:00"
    ev["site"], ev["category"], ev["severity"] = "COL", "other", "near_miss"
    ev.to_csv(d / "incidents.csv", index=False)
    (d / "dataset.toml").write_text(
        """
timezone = "UTC"

[[polygons]]
site = "COL"
path = "columbus.json"
cell = "POLYID"
zone = "NEIG"

[tables.incidents]
path = "incidents.csv"
"""
    )
    return d, polys, ev


def test_the_plan_holds_the_polygons(layer: tuple[pathlib.Path, list[shapely.Geometry], pd.DataFrame]) -> None:
    d, polys, _ = layer
    cells = safetyscope.Dataset.open(d).table("cells").to_pandas()
    assert list(cells.cell) == [str(i) for i in range(1, 50)]
    assert cells.row.isna().all() and cells.col.isna().all()
    for c, p in zip(cells.itertuples(), polys):
        # The same vertices, bit for bit (some Columbus polygons are not valid
        # geometries, so topological equality is undefined for them).
        assert shapely.equals_exact(shapely.from_wkt(c.geometry), p, tolerance=0)
        assert (c.x_min, c.y_min, c.x_max, c.y_max) == pytest.approx(p.bounds)


def test_cell_counts_equal_shapely_and_outside_points_are_reported(
    layer: tuple[pathlib.Path, list[shapely.Geometry], pd.DataFrame],
) -> None:
    d, polys, ev = layer
    ds = safetyscope.Dataset.open(d)
    tree = shapely.STRtree(polys)
    pts, idx = tree.query(shapely.points(ev.x, ev.y), predicate="within")
    want = pd.Series(idx + 1).astype(str).value_counts()
    heat = ds.heatmap().to_pandas().set_index("cell").events
    assert heat[heat > 0].sort_index().to_dict() == want.sort_index().to_dict()
    rep = ds.validation.tables["incidents"]
    assert rep["rejected"]["outside_site"]["count"] == len(ev) - len(pts) == 7
    assert "outside every polygon of COL (49 cells in columbus.json)" in rep["rejected"]["outside_site"]["examples"][0]["value"]


@pytest.mark.parametrize("weights,builder", [("queen", Queen), ("rook", Rook)])
def test_gi_star_on_polygons_equals_esda(
    layer: tuple[pathlib.Path, list[shapely.Geometry], pd.DataFrame], weights: str, builder: type
) -> None:
    d, _, _ = layer
    ds = safetyscope.Dataset.open(d)
    hs = ds.hotspots(weights=weights).to_pandas().set_index("cell")
    y = hs.loc[[str(i) for i in range(1, 50)], "value"].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        w = builder.from_shapefile(COLUMBUS_SHP)
    g = G_Local(y, w, transform="B", star=True, permutations=0)
    z = hs.loc[[str(i) for i in range(1, 50)], "z"].to_numpy()
    np.testing.assert_allclose(z, np.asarray(g.Zs), rtol=0, atol=1e-6)
    nb = hs.loc[[str(i) for i in range(1, 50)], "neighbors"].to_numpy()
    assert list(nb) == [w.cardinalities[i] for i in range(49)]
    assert (hs["class"] != "not_on_plan").all()


def test_every_spatial_analysis_runs_on_polygons(layer: tuple[pathlib.Path, list[shapely.Geometry], pd.DataFrame]) -> None:
    d, _, ev = layer
    ds = safetyscope.Dataset.open(d)
    assert len(ds.emerging_hotspots(from_="2025-01-01", to="2025-06-01").to_pandas()) == 49
    risk = ds.risk_map(from_="2025-01-01", to="2025-06-01").to_pandas()
    assert len(risk) == 49 and risk.hotspot.notna().all()


def test_bad_layers_are_mapping_errors_that_say_where(tmp_path: pathlib.Path) -> None:
    features = json.loads(COLUMBUS_JSON.read_text())["features"][:3]
    (tmp_path / "incidents.csv").write_text("id,occurred_at,site,category,severity,x,y\n1,2025-03-01 08:00,COL,other,near_miss,8.7,14.3\n")

    def load(layer: dict, extra: str = "") -> None:
        (tmp_path / "layer.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": layer}))
        (tmp_path / "dataset.toml").write_text(
            f'[[polygons]]\nsite = "COL"\npath = "layer.geojson"\ncell = "POLYID"\n{extra}\n[tables.incidents]\npath = "incidents.csv"\n'
        )
        safetyscope.Dataset.open(tmp_path)

    twice = [features[0], features[1], dict(features[2], properties=dict(features[2]["properties"], POLYID=1.0))]
    with pytest.raises(safetyscope.MappingError, match=r"\[\[polygons\]\] 1.*cell `1` appears twice in layer.geojson"):
        load(twice)
    nameless = [features[0], dict(features[1], properties={"NAME": "x"})]
    with pytest.raises(safetyscope.MappingError, match=r"layer.geojson feature 2: no property `POLYID`; its properties are NAME"):
        load(nameless)
    point = [features[0], dict(features[1], geometry={"type": "Point", "coordinates": [1, 2]})]
    with pytest.raises(safetyscope.MappingError, match=r"feature 2: a `Point` geometry: cells are Polygon or MultiPolygon"):
        load(point)
    with pytest.raises(safetyscope.MappingError, match=r"unknown field `cells`, expected one of `site`, `path`, `cell`"):
        load(features, 'cells = "x"')
    # A site plan of its own and a layer: one or the other.
    (tmp_path / "cells.csv").write_text("cell,zone,site,geometry\nA,z,COL,\"POLYGON ((0 0, 1 0, 1 1, 0 0))\"\n")
    with pytest.raises(safetyscope.MappingError, match=r"give either a `cells` table or those"):
        load(features, '[tables.cells]\npath = "cells.csv"')


def test_a_plan_of_wkt_cells_is_checked_row_by_row(tmp_path: pathlib.Path) -> None:
    (tmp_path / "cells.csv").write_text(
        "cell,zone,site,geometry\n"
        'A,z,S,"POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))"\n'
        'B,z,S,"POLYGON ((2 0, 4 0, 4 2, 2 2, 2 0))"\n'
        'C,z,S,"POLYGON ((0 0, 1 1))"\n'
        "D,z,S,\n"
    )
    ds = safetyscope.Dataset.open(tmp_path)
    rep = ds.validation.tables["cells"]
    assert rep["rows_accepted"] == 2
    bad = rep["rejected"]["unparseable"]["examples"][0]
    assert bad["row"] == 3 and bad["column"] == "geometry" and "a ring needs at least 3 distinct vertices" in bad["value"]
    missing = rep["rejected"]["missing_required"]["examples"][0]
    assert missing["row"] == 4 and missing["column"] == "row, col or geometry"
