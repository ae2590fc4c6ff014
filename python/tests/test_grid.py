"""Coordinates binned by a mapping's `[[grid]]`, against an independent
projection (the formula of docs/mapping.md) and a shapely point-in-polygon
assignment, on the real Minneapolis police stops; Gi* on the generated grid
against esda."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pandas as pd
import pytest
import shapely
from esda.getisord import G_Local
from libpysal.weights import lat2W

import safetyscope

REPO = pathlib.Path(__file__).resolve().parents[2]
MAPPING = REPO / "examples/real/police-stops-grid.toml"
R = 6_371_008.8
EXTENT = (-93.33, 44.89, -93.19, 45.06)
SIZE = 1000.0


@pytest.fixture(scope="module")
def ds() -> safetyscope.Dataset:
    return safetyscope.Dataset.open(MAPPING)


def projected(stops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, float, float]:
    x0, y0, x1, y1 = EXTENT
    cos_mid = math.cos(math.radians((y0 + y1) / 2))
    x = R * np.radians(stops["long"].to_numpy() - x0) * cos_mid
    y = R * np.radians(stops["lat"].to_numpy() - y0)
    w = R * math.radians(x1 - x0) * cos_mid
    h = R * math.radians(y1 - y0)
    return x, y, w, h


def test_the_site_plan_is_the_declared_grid(ds: safetyscope.Dataset) -> None:
    cells = ds.table("cells").to_pandas()
    _, _, w, h = projected(pd.DataFrame({"long": [], "lat": []}))
    cols, rows = math.ceil(w / SIZE), math.ceil(h / SIZE)
    assert (cols, rows) == (12, 19)
    assert len(cells) == cols * rows
    assert set(cells.site) == {"MPLS"} and set(cells.zone) == {"MPLS"}
    assert cells.row.max() == rows - 1 and cells.col.max() == cols - 1
    np.testing.assert_allclose(cells.x_max - cells.x_min, SIZE)
    np.testing.assert_allclose(cells.y_max - cells.y_min, SIZE)


def test_cell_counts_equal_a_shapely_point_in_polygon_assignment(ds: safetyscope.Dataset) -> None:
    stops = pd.read_parquet(REPO / "examples/real/police-stops/minneapolis_stops_2017.parquet")
    x, y, _, _ = projected(stops)
    cells = ds.table("cells").to_pandas()
    boxes = [shapely.box(c.x_min, c.y_min, c.x_max, c.y_max) for c in cells.itertuples()]
    tree = shapely.STRtree(boxes)
    points = shapely.points(x, y)
    # Points on a shared edge fall in two boxes: the grid gives them to the
    # cell east of the vertical edge and south of the horizontal one.
    pairs = tree.query(points, predicate="intersects")
    hit = pd.DataFrame({"point": pairs[0], "cell": cells.cell.to_numpy()[pairs[1]],
                        "col": cells.col.to_numpy()[pairs[1]], "row": cells.row.to_numpy()[pairs[1]]})
    hit = hit.sort_values(["point", "col", "row"], ascending=[True, False, False]).drop_duplicates("point")
    want = hit.groupby("cell").size()
    assert hit.point.nunique() == len(stops)  # every stop is inside the extent
    heat = ds.heatmap(kinds=["violations"]).to_pandas()
    got = heat.set_index("cell").events
    got = got[got > 0]
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    assert got.sum() == len(stops) == 51_920
    # The canonical x / y hold the projected metres.
    v = ds.table("violations").to_pandas().set_index("id").loc[stops.idNum]
    np.testing.assert_allclose(v.x.to_numpy(), x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(v.y.to_numpy(), y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weights,rook", [("queen", False), ("rook", True)])
def test_gi_star_on_the_grid_equals_esda(ds: safetyscope.Dataset, weights: str, rook: bool) -> None:
    hs = ds.hotspots(site="MPLS", kinds=["violations"], weights=weights).to_pandas()
    hs = hs.sort_values(["row", "col"]).reset_index(drop=True)
    assert len(hs) == 12 * 19
    g = G_Local(hs.value.to_numpy(dtype=float), lat2W(19, 12, rook=rook), transform="B", star=True, permutations=0)
    np.testing.assert_allclose(hs.z.to_numpy(), np.asarray(g.Zs), rtol=0, atol=1e-6)


def test_a_stop_outside_the_grid_is_outside_the_site(tmp_path: pathlib.Path) -> None:
    text = MAPPING.read_text().replace("extent = [-93.33, 44.89, -93.19, 45.06]", "extent = [-93.30, 44.89, -93.19, 45.06]")
    text = text.replace('path = "police-stops/', f'path = "{REPO}/examples/real/police-stops/')
    m = tmp_path / "m.toml"
    m.write_text(text)
    safetyscope.set_allow_outside(True)
    try:
        ds = safetyscope.Dataset.open(m)
    finally:
        safetyscope.set_allow_outside(False)
    stops = pd.read_parquet(REPO / "examples/real/police-stops/minneapolis_stops_2017.parquet")
    outside = int((stops.long < -93.30).sum())
    rep = ds.validation.tables["violations"]
    assert outside > 0
    assert rep["rejected"]["outside_site"]["count"] == outside
    ex = rep["rejected"]["outside_site"]["examples"][0]
    assert ex["column"] == "x, y" and "outside the grid of MPLS" in ex["value"]
    assert rep["rows_accepted"] + outside == len(stops)
