"""safetyscope: workplace-safety (安全生产) analytics on Apache DataFusion.

Open a dataset, run analyses, get Arrow results that convert to pandas,
polars or pyarrow without copies::

    >>> import safetyscope, tempfile
    >>> out = tempfile.mkdtemp()
    >>> truth = safetyscope.generate_sample(out, scale=0.05, sites=2)
    >>> ds = safetyscope.Dataset.open(out)
    >>> hm = ds.heatmap(site="U01")
    >>> hm.num_rows
    36
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional, Sequence, Union

from . import _internal
from .errors import (
    DataError,
    MappingError,
    NotFoundError,
    OptionError,
    QueryError,
    SafetyscopeError,
    SafetyscopeIOError,
    SchemaError,
)

__version__: str = _internal.__version__

PathLike = Union[str, "os.PathLike[str]"]


def _write_whole(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a new temporary file beside it (a
    random name created exclusively, so no other user's file or link is
    written through), renamed over ``path`` once complete."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _arrow_stream_source(obj: Any) -> Any:
    """Return an object implementing ``__arrow_c_stream__`` for ``obj``.

    pyarrow tables and batches, polars DataFrames and any Arrow PyCapsule
    object pass through untouched; a pandas DataFrame without the interface
    is converted with pyarrow.
    """
    if hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__"):
        return obj
    mod = type(obj).__module__
    if mod.startswith("pandas"):
        import pyarrow as pa

        return pa.Table.from_pandas(obj, preserve_index=False)
    raise TypeError(
        f"expected an Arrow-compatible table (pyarrow, polars, pandas), got {type(obj).__name__}"
    )


class ValidationReport:
    """What was read, accepted and rejected per table, and why.

    ``tables`` maps a table name to a dict with ``rows_read``,
    ``rows_accepted``, ``rejected`` (reason → ``{count, examples}``),
    ``time_unknown``, ``date_only`` (dates without a time of day) and
    ``error``.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.timezone: str = data.get("timezone", "")
        self.tables: dict[str, dict[str, Any]] = data.get("tables", {})

    def rows_rejected(self, table: Optional[str] = None) -> int:
        """Rejected rows in one table, or in all tables."""
        tables = [self.tables[table]] if table else list(self.tables.values())
        return sum(sum(r["count"] for r in t["rejected"].values()) for t in tables)

    def rejected_counts(self, table: str) -> dict[str, int]:
        """Reason → count of rejected rows of a table."""
        return {k: v["count"] for k, v in self.tables[table]["rejected"].items()}

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {"timezone": self.timezone, "tables": self.tables}

    def __repr__(self) -> str:
        parts = [
            f"{name}: {t['rows_read']} read, {t['rows_accepted']} accepted"
            for name, t in self.tables.items()
        ]
        return f"ValidationReport({'; '.join(parts)})"


class Chart:
    """An SVG chart: displays in Jupyter, saves as ``.svg`` or ``.png``."""

    def __init__(self, svg: str) -> None:
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg

    def to_png(self, scale: float = 2.0) -> bytes:
        """The chart as PNG bytes (``scale`` 1.0 = one pixel per SVG unit)."""
        return _internal.svg_to_png(self.svg, scale)

    def save(self, path: PathLike, scale: float = 2.0) -> None:
        """Write the chart to ``path``: ``.svg`` (text) or ``.png`` (image at
        ``scale``). The file appears complete or not at all.

        >>> import safetyscope, tempfile, os
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> chart = safetyscope.Dataset.open(d).heatmap().plot()
        >>> chart.save(os.path.join(d, "heatmap.png"))
        >>> open(os.path.join(d, "heatmap.png"), "rb").read(4)[1:]
        b'PNG'
        """
        p = os.fspath(path)
        low = p.lower()
        if low.endswith(".svg"):
            data = self.svg.encode("utf-8")
        elif low.endswith(".png"):
            data = self.to_png(scale)
        else:
            raise OptionError(f"cannot save a chart as {p!r}: use a .svg or .png file name")
        _write_whole(p, data)


class Result:
    """The result of an analysis or query: an Arrow table plus a chart.

    Implements ``__arrow_c_stream__``, so ``pyarrow.table(result)`` and
    ``polars.DataFrame(result)`` read it without copies.
    """

    def __init__(self, raw: "_internal.RawResult") -> None:
        self._raw = raw

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._raw.__arrow_c_stream__(requested_schema)

    @property
    def num_rows(self) -> int:
        """Number of rows."""
        return self._raw.num_rows()

    @property
    def columns(self) -> list[str]:
        """Column names."""
        return self._raw.column_names()

    @property
    def validation(self) -> ValidationReport:
        """The ingest report of the dataset the result was computed from."""
        return ValidationReport(json.loads(self._raw.validation_json()))

    def to_arrow(self) -> Any:
        """As a ``pyarrow.Table``."""
        import pyarrow as pa

        return pa.table(self)

    def to_pandas(self) -> Any:
        """As a ``pandas.DataFrame`` (through pyarrow)."""
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """As a ``polars.DataFrame``."""
        import polars as pl

        return pl.DataFrame(self)

    def plot(self) -> Optional[Chart]:
        """The chart of this result, if the analysis draws one."""
        svg = self._raw.svg()
        return Chart(svg) if svg is not None else None

    @property
    def document(self) -> Optional[str]:
        """The HTML document of the result, if the analysis writes one
        (``report``)."""
        return self._raw.document()

    def save_html(self, path: PathLike) -> None:
        """Write the HTML document (``report``) to ``path``, whole or not at all."""
        doc = self._raw.document()
        if doc is None:
            raise OptionError("this result has no document (only `report` writes one)")
        _write_whole(os.fspath(path), doc.encode("utf-8"))

    def _repr_html_(self) -> str:
        import html

        head = []
        try:
            t = self.to_arrow().slice(0, 10).to_pylist()
            cols = self.columns
            head.append("<table><thead><tr>")
            head.extend(f"<th>{html.escape(c)}</th>" for c in cols)
            head.append("</tr></thead><tbody>")
            for row in t:
                head.append("<tr>" + "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in cols) + "</tr>")
            head.append("</tbody></table>")
        except ImportError:
            head.append(f"<p>{self.num_rows} rows × {len(self.columns)} columns</p>")
        svg = self._raw.svg() or ""
        return f"<div>{''.join(head)}<p>{self.num_rows} rows</p>{svg}</div>"

    def __repr__(self) -> str:
        return f"Result({self.num_rows} rows; columns {', '.join(self.columns)})"


class Dataset:
    """Canonical safety tables registered in a DataFusion session.

    Open one with :meth:`open` (a directory of canonical files, or a mapping
    file) or :meth:`from_tables` (in-memory pandas, polars or pyarrow tables).
    """

    def __init__(self, raw: "_internal.RawDataset") -> None:
        self._raw = raw

    @staticmethod
    def open(path: PathLike, timezone: Optional[str] = None, lenient: bool = False) -> "Dataset":
        """Open a dataset directory or a ``.toml`` mapping file, on disk or on
        S3 or an S3-compatible store (``"s3://bucket/prefix"``; credentials and
        endpoint from the ``AWS_*`` environment variables, see
        docs/mapping.md).

        With ``lenient=True`` tables that cannot be loaded are recorded in the
        validation report instead of raising.
        """
        return Dataset(_internal.RawDataset.open(os.fspath(path), timezone, lenient))

    @staticmethod
    def from_tables(
        tables: Optional[Mapping[str, Any]] = None,
        *,
        timezone: Optional[str] = None,
        mapping: Optional[Union[str, PathLike]] = None,
        **kw: Any,
    ) -> "Dataset":
        """Load in-memory tables given by canonical name.

        ``Dataset.from_tables(incidents=df, cells=plan)``; values are pandas,
        polars or pyarrow tables. ``mapping`` is TOML text or a path to a
        mapping file whose column rules apply to these tables.
        """
        all_tables = dict(tables or {})
        all_tables.update(kw)
        mapping_text = None
        if mapping is not None:
            m = os.fspath(mapping)
            mapping_text = open(m, encoding="utf-8").read() if os.path.exists(m) else m
        converted = {k: _arrow_stream_source(v) for k, v in all_tables.items()}
        return Dataset(_internal.RawDataset.from_tables(converted, timezone, mapping_text))

    @property
    def timezone(self) -> str:
        """The dataset timezone (IANA name)."""
        return self._raw.timezone()

    @property
    def validation(self) -> ValidationReport:
        """The ingest report: rows read, accepted and rejected by reason."""
        return ValidationReport(json.loads(self._raw.validation_json()))

    @property
    def tables(self) -> list[str]:
        """Names of the tables provided."""
        return self._raw.table_names()

    def table(self, name: str) -> Result:
        """The accepted rows of a canonical table."""
        return Result(self._raw.table(name))

    def sql(self, query: str, allow_write: bool = False) -> Result:
        """Run SQL over the canonical tables. Only queries run (SELECT, WITH,
        EXPLAIN); DDL, DML and ``COPY ... TO`` raise :class:`OptionError`
        unless ``allow_write=True`` (they can write any file the process can).

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> safetyscope.Dataset.open(d).sql("select count(*) as n from cells").to_arrow()["n"][0].as_py()
        36
        """
        return Result(self._raw.sql(query, allow_write))

    def run(self, analysis: str, **options: Any) -> Result:
        """Run an analysis of the registry by name (``safetyscope.analyses()``
        lists them with their options, defaults and docs); ``from_`` stands
        for the option ``from``. Unknown options raise :class:`OptionError`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> safetyscope.Dataset.open(d).run("heatmap", site="U01").num_rows
        36
        """
        kinds = _option_kinds(analysis)
        opts: dict[str, Any] = {}
        for key, value in options.items():
            if value is None:
                continue
            name = "from" if key == "from_" else key
            opts[name] = _convert(name, kinds.get(name), value)
        return self._run(analysis, opts)

    def _run(self, analysis: str, options: Mapping[str, Any]) -> Result:
        return Result(self._raw.run(analysis, json.dumps(dict(options))))

    # -- analyses (generated from the registry by scripts/gen-python-methods.py; do not edit) --
    def heatmap(
        self,
        *,
        by: Optional[str] = None,
        from_: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        site: Optional[str] = None,
        to: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Events per cell of the site plan, with an SVG grid.

        Counts incidents, injuries, near misses, hazards and violations per cell (or
        summed per zone or site) in a window.

        Keywords (None: the default):

        - ``by`` (``"cell"`` | ``"zone"`` | ``"site"``, default ``"cell"``): One row
          per cell (default), or counts summed per zone or site.
        - ``from_`` (text, default none): Start of the window, inclusive, local time
          (`2025-01-01` or `2025-01-01 08:00`).
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted into `events` (default:
          incidents).
        - ``site`` (text, default none): Only this site.
        - ``to`` (text, default none): End of the window, exclusive, local time.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("heatmap", by=by, from_=from_, kinds=kinds, site=site, to=to, lang=lang)

    def hotspots(
        self,
        *,
        alpha: Optional[float] = None,
        distance: Optional[float] = None,
        fdr: Optional[bool] = None,
        from_: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        permutations: Optional[int] = None,
        seed: Optional[int] = None,
        site: Optional[str] = None,
        to: Optional[str] = None,
        transform: Optional[str] = None,
        weights: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Getis-Ord Gi* hot and cold spots over the cells of the site plan.

        Gi* z-scores and p-values per cell with rook, queen or distance-band
        neighbours, Benjamini-Hochberg q-values and confidence classes (hot_99 …
        cold_99); optionally a seeded permutation p-value.

        Keywords (None: the default):

        - ``alpha`` (number, default ``0.05``): Significance level of the
          `significant` column (default 0.05).
        - ``distance`` (number, default none): Distance band in metres for `weights
          = "distance"`.
        - ``fdr`` (bool, default ``true``): Classify by FDR-adjusted q-values
          (default true) instead of raw p-values.
        - ``from_`` (text, default none): Window start, local time, inclusive.
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted (default: incidents).
        - ``permutations`` (integer, default ``0``): Conditional permutations for a
          pseudo p-value (0 = none).
        - ``seed`` (integer, default ``42``): Seed of the permutations.
        - ``site`` (text, default none): Only this site.
        - ``to`` (text, default none): Window end, local time, exclusive.
        - ``transform`` (``"binary"`` | ``"row"``, default ``"binary"``): Weight
          transformation (default binary).
        - ``weights`` (``"rook"`` | ``"queen"`` | ``"distance"``, default
          ``"queen"``): Neighbourhood definition (default queen).
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("hotspots", alpha=alpha, distance=distance, fdr=fdr, from_=from_, kinds=kinds, permutations=permutations, seed=seed, site=site, to=to, transform=transform, weights=weights, lang=lang)

    def risk_map(
        self,
        *,
        alerts: Optional[Any] = None,
        by: Optional[str] = None,
        dynamic_bands: Optional[Any] = None,
        from_: Optional[str] = None,
        half_life_days: Optional[float] = None,
        lec_bands: Optional[Any] = None,
        ls_bands: Optional[Any] = None,
        per_exposure: Optional[bool] = None,
        prior_hours: Optional[float] = None,
        rule: Optional[str] = None,
        site: Optional[str] = None,
        to: Optional[str] = None,
        weights: Optional[Any] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """The risk four-colour map: a level per cell (or zone, site) from the static LEC/LS assessment and the evidence of a window.

        Red / orange / yellow / blue per cell from the fixed LEC or LS assessment
        and a dynamic score of the window's weighted evidence (incidents, near
        misses, open and overdue hazards, violations, alarm episodes, intrusions),
        per hour worked with empirical-Bayes smoothing. The window defaults to the
        90 days before the day after the latest event.

        Keywords (None: the default):

        - ``alerts`` (structure, default ``{"as_of": null, "authorised": [], "from":
          null, "hysteresis": 0.0, "ladder": {"general": [{"after_hours": 0.0,
          "level": "owner"}, {"after_hours": 24.0, "level": "supervisor"},
          {"after_hours": 72.0, "level": "leadership"}], "major": [{"after_hours":
          0.0, "level": "owner"}, {"after_hours": 8.0, "level": "supervisor"},
          {"after_hours": 24.0, "level": "leadership"}]}, "max_gap_minutes": 10.0,
          "min_duration_minutes": 0.0, "points": {"base": 100.0, "floor": 60.0,
          "hazard_general": 2.0, "hazard_major": 10.0, "violation": {"intrusion":
          10.0, "no_harness": 10.0, "no_helmet": 5.0, "no_vest": 3.0, "phone": 3.0,
          "smoking": 10.0}, "violation_default": 5.0}, "reading_gap_minutes": 120.0,
          "repeat_days": 3, "repeat_kinds": [], "site": null, "thresholds": {}}``):
          The alert configuration the alarm and intrusion evidence is found with:
          the options of `alerts` (authorised people, thresholds, hysteresis, gaps,
          minimum duration), so that the risk map and the alert list count the same
          episodes. Its `site`, `as_of` and `from` are ignored: the risk windows
          apply.
        - ``by`` (``"cell"`` | ``"zone"`` | ``"site"``, default ``"cell"``): Rows
          per cell, zone or site.
        - ``dynamic_bands`` (structure, default ``{"bands": [[3.0, "red"], [2.0,
          "orange"], [1.25, "yellow"]], "boundary_above": true, "name": "rate ratio:
          ≥3 red, ≥2 orange, ≥1.25 yellow (v1)"}``): Dynamic bands on the rate
          ratio.
        - ``from_`` (text, default none): Window start, local time, inclusive
          (default: 90 days before `to`).
        - ``half_life_days`` (number, default none): Exponential decay of event
          weights with this half-life in days, counted back from `to` (none by
          default).
        - ``lec_bands`` (structure, default ``{"bands": [[320.0, "red"], [160.0,
          "orange"], [70.0, "yellow"]], "boundary_above": false, "name": "LEC
          D=L×E×C: >320 red, >160 orange, >70 yellow (v1)"}``): Static bands for LEC
          assessments.
        - ``ls_bands`` (structure, default ``{"bands": [[20.0, "red"], [15.0,
          "orange"], [9.0, "yellow"]], "boundary_above": true, "name": "LS R=L×S:
          ≥20 red, ≥15 orange, ≥9 yellow (v1)"}``): Static bands for LS assessments.
        - ``per_exposure`` (bool, default ``true``): Normalise by hours worked (per
          1,000 h) where exposure is known.
        - ``prior_hours`` (number, default none): Prior strength of the
          empirical-Bayes smoothing in hours (default: estimated from the data by
          the method of moments).
        - ``rule`` (``"max"`` | ``"static"`` | ``"dynamic"``, default ``"max"``):
          How the final level is chosen.
        - ``site`` (text, default none): Only this site.
        - ``to`` (text, default none): Window end, local time, exclusive (default:
          the day after the latest incident, hazard or violation).
        - ``weights`` (structure, default ``{"alarm_episode": 2.0, "fatal": 40.0,
          "first_aid": 2.0, "intrusion": 1.0, "minor": 5.0, "near_miss": 1.0,
          "open_hazard_general": 1.0, "open_hazard_major": 4.0, "overdue_cap": 3.0,
          "overdue_growth_per_day": 0.14285714285714285, "overdue_hazard_general":
          2.0, "overdue_hazard_major": 8.0, "serious": 15.0, "violation": 0.5}``):
          Evidence weights.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("risk", alerts=alerts, by=by, dynamic_bands=dynamic_bands, from_=from_, half_life_days=half_life_days, lec_bands=lec_bands, ls_bands=ls_bands, per_exposure=per_exposure, prior_hours=prior_hours, rule=rule, site=site, to=to, weights=weights, lang=lang)

    def density(
        self,
        *,
        bandwidth: Optional[float] = None,
        bandwidth_rule: Optional[str] = None,
        bbox: Optional[Sequence[float]] = None,
        from_: Optional[str] = None,
        kernel: Optional[str] = None,
        resolution: Optional[float] = None,
        site: Optional[str] = None,
        source: Optional[str] = None,
        to: Optional[str] = None,
        weight: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """A kernel density surface of point data over one site's plan.

        Gaussian or Epanechnikov kernel density of incidents, hazards, violations or
        positions with x/y, on a raster of the site plan; `density` integrates to
        one, `intensity` is points per m².

        Keywords (None: the default):

        - ``bandwidth`` (number, default none): Bandwidth in metres; when absent,
          `bandwidth_rule`.
        - ``bandwidth_rule`` (``"scott"`` | ``"silverman"``, default ``"scott"``):
          Rule-of-thumb bandwidth (default Scott).
        - ``bbox`` (list of number, default none): Raster extent `[x_min, y_min,
          x_max, y_max]` (default: the site's plan, else the points' bounds).
        - ``from_`` (text, default none): Window start, local time, inclusive.
        - ``kernel`` (``"gaussian"`` | ``"epanechnikov"``, default ``"gaussian"``):
          Kernel (default gaussian).
        - ``resolution`` (number, default ``1.0``): Raster cell size in metres
          (default 1).
        - ``site`` (text, default none): The site: coordinates are per site plan, so
          a surface is per site (default: the first site in the plan).
        - ``source`` (``"incidents"`` | ``"hazards"`` | ``"violations"`` |
          ``"positions"``, default ``"incidents"``): Which points (default
          incidents).
        - ``to`` (text, default none): Window end, local time, exclusive.
        - ``weight`` (text, default none): A numeric column weighting each point
          (e.g. `lost_days`); rows where it is null weigh 0. Default: every point
          weighs 1.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("density", bandwidth=bandwidth, bandwidth_rule=bandwidth_rule, bbox=bbox, from_=from_, kernel=kernel, resolution=resolution, site=site, source=source, to=to, weight=weight, lang=lang)

    def emerging_hotspots(
        self,
        *,
        alpha: Optional[float] = None,
        from_: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        site: Optional[str] = None,
        slice: Optional[str] = None,
        to: Optional[str] = None,
        weights: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Emerging hot spots: Gi* per week or month and the Mann-Kendall trend of each cell's z-scores.

        Each cell as new, consecutive, intensifying, persistent, diminishing,
        sporadic, oscillating or historical (cold_ for cold spots), or no_pattern.
        The window defaults to the 365 days before the day after the latest event.

        Keywords (None: the default):

        - ``alpha`` (number, default ``0.05``): Significance for a hot slice
          (q-value) and for the trend (default 0.05).
        - ``from_`` (text, default none): Start, local time (default 365 days before
          `to`), rounded down to a slice.
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted (default incidents).
        - ``site`` (text, default none): Only this site.
        - ``slice`` (``"week"`` | ``"month"``, default ``"month"``): Slice length
          (default month).
        - ``to`` (text, default none): End, exclusive (default the local midnight
          after the latest event).
        - ``weights`` (``"rook"`` | ``"queen"`` | ``"distance"``, default
          ``"queen"``): Neighbourhood of Gi* (default queen).
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("emerging", alpha=alpha, from_=from_, kinds=kinds, site=site, slice=slice, to=to, weights=weights, lang=lang)

    def patterns(
        self,
        *,
        view: Optional[str] = None,
        alpha: Optional[float] = None,
        by: Optional[Union[str, Sequence[str]]] = None,
        categories: Optional[Union[str, Sequence[str]]] = None,
        cell: Optional[str] = None,
        columns: Optional[str] = None,
        dim: Optional[str] = None,
        exposure: Optional[str] = None,
        from_: Optional[str] = None,
        grid: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        max_aoristic_hours: Optional[float] = None,
        severities: Optional[Union[str, Sequence[str]]] = None,
        shifts: Optional[Sequence[Any]] = None,
        site: Optional[str] = None,
        time: Optional[str] = None,
        to: Optional[str] = None,
        weekday_factors: Optional[Sequence[float]] = None,
        weights: Optional[Any] = None,
        zone: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Time-of-day patterns: the hour × weekday profile, shift profiles, events by shift, Pareto, cross-tab or accident pyramid.

        Dense grids in the dataset's local time with explicit zeros, exposure-
        normalised rates and a row for events whose time of day is unknown.

        Keywords (None: the default):

        - ``view`` (profile | shifts | shift_events | pareto | crosstab | pyramid,
          default ``profile``): What to compute.
        - ``alpha`` (number, default ``0.05``): Peak tests: false discovery rate /
          significance level.
        - ``by`` (list of ``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``[]``): Group rows by these
          dimensions (none = one group).
        - ``categories`` (list of text, default ``[]``): Only these categories
          (accident types, hazard categories, violation kinds).
        - ``cell`` (text, default none): Only this grid cell.
        - ``columns`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"zone"``): Cross-tab: the dimension
          of the columns.
        - ``dim`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"category"``): Pareto and
          cross-tab: the dimension ranked (rows of the cross-tab).
        - ``exposure`` (``"auto"`` | ``"records"`` | ``"shifts"`` | ``"positions"``
          | ``"uniform"``, default ``"auto"``): Exposure by hour of the week.
        - ``from_`` (text, default none): Window start, local time, inclusive.
        - ``grid`` (``"hour_weekday"`` | ``"hour"``, default ``"hour_weekday"``):
          Peak tests: the grid.
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted (default: incidents).
        - ``max_aoristic_hours`` (number, default ``72.0``): Aoristic weighting: an
          event known only within a longer span than this (hours) says nothing about
          its time of day; it is counted as time-unknown instead of being spread
          over the span.
        - ``severities`` (list of text, default ``[]``): Only these severities
          (incidents) or levels (hazards).
        - ``shifts`` (list of structure, default ``[]``): Shift roster (exposure
          `shifts` and the shift analyses); empty = the dataset's declared roster,
          else day 08–20 and night 20–08.
        - ``site`` (text, default none): Only this site.
        - ``time`` (``"start"`` | ``"aoristic"``, default ``"start"``): Start time
          or aoristic weighting.
        - ``to`` (text, default none): Window end, local time, exclusive.
        - ``weekday_factors`` (list of number, default none): Relative exposure per
          weekday (Monday first) applied with the shift roster, e.g. `[1, 1, 1, 1,
          1, 0.8, 0.6]` for lighter weekends.
        - ``weights`` (structure, default ``{"alarm_episode": 2.0, "fatal": 40.0,
          "first_aid": 2.0, "intrusion": 1.0, "minor": 5.0, "near_miss": 1.0,
          "open_hazard_general": 1.0, "open_hazard_major": 4.0, "overdue_cap": 3.0,
          "overdue_growth_per_day": 0.14285714285714285, "overdue_hazard_general":
          2.0, "overdue_hazard_major": 8.0, "serious": 15.0, "violation": 0.5}``):
          Severity weights of `weighted`: the incident severity weights, the
          open-hazard weights by level and the violation weight of the risk map.
        - ``zone`` (text, default none): Only this zone.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("patterns", view=view, alpha=alpha, by=by, categories=categories, cell=cell, columns=columns, dim=dim, exposure=exposure, from_=from_, grid=grid, kinds=kinds, max_aoristic_hours=max_aoristic_hours, severities=severities, shifts=shifts, site=site, time=time, to=to, weekday_factors=weekday_factors, weights=weights, zone=zone, lang=lang)

    def peaks(
        self,
        *,
        cells: Optional[bool] = None,
        alpha: Optional[float] = None,
        by: Optional[Union[str, Sequence[str]]] = None,
        categories: Optional[Union[str, Sequence[str]]] = None,
        cell: Optional[str] = None,
        columns: Optional[str] = None,
        dim: Optional[str] = None,
        exposure: Optional[str] = None,
        from_: Optional[str] = None,
        grid: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        max_aoristic_hours: Optional[float] = None,
        severities: Optional[Union[str, Sequence[str]]] = None,
        shifts: Optional[Sequence[Any]] = None,
        site: Optional[str] = None,
        time: Optional[str] = None,
        to: Optional[str] = None,
        weekday_factors: Optional[Sequence[float]] = None,
        weights: Optional[Any] = None,
        zone: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Peaks: every hour × weekday (or hour) cell against the rest of the week by the exact Poisson rate test with exposure, FDR-adjusted.

        The ranked high-risk periods (adjacent significant hours merged) or, with
        cells, every tested cell with its rate ratio, exact confidence interval, p
        and Benjamini-Hochberg q.

        Keywords (None: the default):

        - ``cells`` (true | false, default ``false``): Write every tested cell
          instead of the merged periods.
        - ``alpha`` (number, default ``0.05``): Peak tests: false discovery rate /
          significance level.
        - ``by`` (list of ``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``[]``): Group rows by these
          dimensions (none = one group).
        - ``categories`` (list of text, default ``[]``): Only these categories
          (accident types, hazard categories, violation kinds).
        - ``cell`` (text, default none): Only this grid cell.
        - ``columns`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"zone"``): Cross-tab: the dimension
          of the columns.
        - ``dim`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"category"``): Pareto and
          cross-tab: the dimension ranked (rows of the cross-tab).
        - ``exposure`` (``"auto"`` | ``"records"`` | ``"shifts"`` | ``"positions"``
          | ``"uniform"``, default ``"auto"``): Exposure by hour of the week.
        - ``from_`` (text, default none): Window start, local time, inclusive.
        - ``grid`` (``"hour_weekday"`` | ``"hour"``, default ``"hour_weekday"``):
          Peak tests: the grid.
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted (default: incidents).
        - ``max_aoristic_hours`` (number, default ``72.0``): Aoristic weighting: an
          event known only within a longer span than this (hours) says nothing about
          its time of day; it is counted as time-unknown instead of being spread
          over the span.
        - ``severities`` (list of text, default ``[]``): Only these severities
          (incidents) or levels (hazards).
        - ``shifts`` (list of structure, default ``[]``): Shift roster (exposure
          `shifts` and the shift analyses); empty = the dataset's declared roster,
          else day 08–20 and night 20–08.
        - ``site`` (text, default none): Only this site.
        - ``time`` (``"start"`` | ``"aoristic"``, default ``"start"``): Start time
          or aoristic weighting.
        - ``to`` (text, default none): Window end, local time, exclusive.
        - ``weekday_factors`` (list of number, default none): Relative exposure per
          weekday (Monday first) applied with the shift roster, e.g. `[1, 1, 1, 1,
          1, 0.8, 0.6]` for lighter weekends.
        - ``weights`` (structure, default ``{"alarm_episode": 2.0, "fatal": 40.0,
          "first_aid": 2.0, "intrusion": 1.0, "minor": 5.0, "near_miss": 1.0,
          "open_hazard_general": 1.0, "open_hazard_major": 4.0, "overdue_cap": 3.0,
          "overdue_growth_per_day": 0.14285714285714285, "overdue_hazard_general":
          2.0, "overdue_hazard_major": 8.0, "serious": 15.0, "violation": 0.5}``):
          Severity weights of `weighted`: the incident severity weights, the
          open-hazard weights by level and the violation weight of the risk map.
        - ``zone`` (text, default none): Only this zone.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("peaks", cells=cells, alpha=alpha, by=by, categories=categories, cell=cell, columns=columns, dim=dim, exposure=exposure, from_=from_, grid=grid, kinds=kinds, max_aoristic_hours=max_aoristic_hours, severities=severities, shifts=shifts, site=site, time=time, to=to, weekday_factors=weekday_factors, weights=weights, zone=zone, lang=lang)

    def trends(
        self,
        *,
        alpha: Optional[float] = None,
        by: Optional[Union[str, Sequence[str]]] = None,
        categories: Optional[Union[str, Sequence[str]]] = None,
        cell: Optional[str] = None,
        columns: Optional[str] = None,
        dim: Optional[str] = None,
        exposure: Optional[str] = None,
        from_: Optional[str] = None,
        grid: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        max_aoristic_hours: Optional[float] = None,
        severities: Optional[Union[str, Sequence[str]]] = None,
        shifts: Optional[Sequence[Any]] = None,
        site: Optional[str] = None,
        time: Optional[str] = None,
        to: Optional[str] = None,
        weekday_factors: Optional[Sequence[float]] = None,
        weights: Optional[Any] = None,
        zone: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Monthly trend with rolling means, year-over-year change and seasonality.

        Events per local month with the 3- and 12-month rolling means, the change
        against the same month a year before and a seasonal index.

        Keywords (None: the default):

        - ``alpha`` (number, default ``0.05``): Peak tests: false discovery rate /
          significance level.
        - ``by`` (list of ``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``[]``): Group rows by these
          dimensions (none = one group).
        - ``categories`` (list of text, default ``[]``): Only these categories
          (accident types, hazard categories, violation kinds).
        - ``cell`` (text, default none): Only this grid cell.
        - ``columns`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"zone"``): Cross-tab: the dimension
          of the columns.
        - ``dim`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"category"``): Pareto and
          cross-tab: the dimension ranked (rows of the cross-tab).
        - ``exposure`` (``"auto"`` | ``"records"`` | ``"shifts"`` | ``"positions"``
          | ``"uniform"``, default ``"auto"``): Exposure by hour of the week.
        - ``from_`` (text, default none): Window start, local time, inclusive.
        - ``grid`` (``"hour_weekday"`` | ``"hour"``, default ``"hour_weekday"``):
          Peak tests: the grid.
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted (default: incidents).
        - ``max_aoristic_hours`` (number, default ``72.0``): Aoristic weighting: an
          event known only within a longer span than this (hours) says nothing about
          its time of day; it is counted as time-unknown instead of being spread
          over the span.
        - ``severities`` (list of text, default ``[]``): Only these severities
          (incidents) or levels (hazards).
        - ``shifts`` (list of structure, default ``[]``): Shift roster (exposure
          `shifts` and the shift analyses); empty = the dataset's declared roster,
          else day 08–20 and night 20–08.
        - ``site`` (text, default none): Only this site.
        - ``time`` (``"start"`` | ``"aoristic"``, default ``"start"``): Start time
          or aoristic weighting.
        - ``to`` (text, default none): Window end, local time, exclusive.
        - ``weekday_factors`` (list of number, default none): Relative exposure per
          weekday (Monday first) applied with the shift roster, e.g. `[1, 1, 1, 1,
          1, 0.8, 0.6]` for lighter weekends.
        - ``weights`` (structure, default ``{"alarm_episode": 2.0, "fatal": 40.0,
          "first_aid": 2.0, "intrusion": 1.0, "minor": 5.0, "near_miss": 1.0,
          "open_hazard_general": 1.0, "open_hazard_major": 4.0, "overdue_cap": 3.0,
          "overdue_growth_per_day": 0.14285714285714285, "overdue_hazard_general":
          2.0, "overdue_hazard_major": 8.0, "serious": 15.0, "violation": 0.5}``):
          Severity weights of `weighted`: the incident severity weights, the
          open-hazard weights by level and the violation weight of the risk map.
        - ``zone`` (text, default none): Only this zone.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("trends", alpha=alpha, by=by, categories=categories, cell=cell, columns=columns, dim=dim, exposure=exposure, from_=from_, grid=grid, kinds=kinds, max_aoristic_hours=max_aoristic_hours, severities=severities, shifts=shifts, site=site, time=time, to=to, weekday_factors=weekday_factors, weights=weights, zone=zone, lang=lang)

    def knox(
        self,
        *,
        alpha: Optional[float] = None,
        by: Optional[Union[str, Sequence[str]]] = None,
        categories: Optional[Union[str, Sequence[str]]] = None,
        cell: Optional[str] = None,
        columns: Optional[str] = None,
        days: Optional[float] = None,
        dim: Optional[str] = None,
        distance: Optional[float] = None,
        exposure: Optional[str] = None,
        from_: Optional[str] = None,
        grid: Optional[str] = None,
        kinds: Optional[Union[str, Sequence[str]]] = None,
        max_aoristic_hours: Optional[float] = None,
        permutations: Optional[int] = None,
        seed: Optional[int] = None,
        severities: Optional[Union[str, Sequence[str]]] = None,
        shifts: Optional[Sequence[Any]] = None,
        site: Optional[str] = None,
        time: Optional[str] = None,
        to: Optional[str] = None,
        weekday_factors: Optional[Sequence[float]] = None,
        weights: Optional[Any] = None,
        zone: Optional[str] = None,
    ) -> Result:
        """Near-repeat space-time clustering: the Knox test on events with x/y.

        Pairs of events close in space and in time against the count expected if
        space and time were independent, with a Poisson p-value and a seeded
        permutation p-value. The event selection options are those of the patterns.

        Keywords (None: the default):

        - ``alpha`` (number, default ``0.05``): Peak tests: false discovery rate /
          significance level.
        - ``by`` (list of ``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``[]``): Group rows by these
          dimensions (none = one group).
        - ``categories`` (list of text, default ``[]``): Only these categories
          (accident types, hazard categories, violation kinds).
        - ``cell`` (text, default none): Only this grid cell.
        - ``columns`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"zone"``): Cross-tab: the dimension
          of the columns.
        - ``days`` (number, default ``3.0``): Time threshold in days: pairs at most
          this far apart are close.
        - ``dim`` (``"site"`` | ``"zone"`` | ``"cell"`` | ``"category"`` |
          ``"severity"`` | ``"kind"``, default ``"category"``): Pareto and
          cross-tab: the dimension ranked (rows of the cross-tab).
        - ``distance`` (number, default ``5.0``): Space threshold in metres: pairs
          at most this far apart are close.
        - ``exposure`` (``"auto"`` | ``"records"`` | ``"shifts"`` | ``"positions"``
          | ``"uniform"``, default ``"auto"``): Exposure by hour of the week.
        - ``from_`` (text, default none): Window start, local time, inclusive.
        - ``grid`` (``"hour_weekday"`` | ``"hour"``, default ``"hour_weekday"``):
          Peak tests: the grid.
        - ``kinds`` (list of ``"incidents"`` | ``"hazards"`` | ``"violations"``,
          default ``["incidents"]``): Event tables counted (default: incidents).
        - ``max_aoristic_hours`` (number, default ``72.0``): Aoristic weighting: an
          event known only within a longer span than this (hours) says nothing about
          its time of day; it is counted as time-unknown instead of being spread
          over the span.
        - ``permutations`` (integer, default ``199``): Permutations of the times
          over the places (0 = none).
        - ``seed`` (integer, default ``1``): Seed of the permutations.
        - ``severities`` (list of text, default ``[]``): Only these severities
          (incidents) or levels (hazards).
        - ``shifts`` (list of structure, default ``[]``): Shift roster (exposure
          `shifts` and the shift analyses); empty = the dataset's declared roster,
          else day 08–20 and night 20–08.
        - ``site`` (text, default none): Only this site.
        - ``time`` (``"start"`` | ``"aoristic"``, default ``"start"``): Start time
          or aoristic weighting.
        - ``to`` (text, default none): Window end, local time, exclusive.
        - ``weekday_factors`` (list of number, default none): Relative exposure per
          weekday (Monday first) applied with the shift roster, e.g. `[1, 1, 1, 1,
          1, 0.8, 0.6]` for lighter weekends.
        - ``weights`` (structure, default ``{"alarm_episode": 2.0, "fatal": 40.0,
          "first_aid": 2.0, "intrusion": 1.0, "minor": 5.0, "near_miss": 1.0,
          "open_hazard_general": 1.0, "open_hazard_major": 4.0, "overdue_cap": 3.0,
          "overdue_growth_per_day": 0.14285714285714285, "overdue_hazard_general":
          2.0, "overdue_hazard_major": 8.0, "serious": 15.0, "violation": 0.5}``):
          Severity weights of `weighted`: the incident severity weights, the
          open-hazard weights by level and the violation weight of the risk map.
        - ``zone`` (text, default none): Only this zone.
        """
        return self.run("knox", alpha=alpha, by=by, categories=categories, cell=cell, columns=columns, days=days, dim=dim, distance=distance, exposure=exposure, from_=from_, grid=grid, kinds=kinds, max_aoristic_hours=max_aoristic_hours, permutations=permutations, seed=seed, severities=severities, shifts=shifts, site=site, time=time, to=to, weekday_factors=weekday_factors, weights=weights, zone=zone)

    def kpis(
        self,
        *,
        as_of: Optional[str] = None,
        kpis: Optional[Union[str, Sequence[str]]] = None,
        periods: Optional[Union[str, Sequence[str]]] = None,
        scopes: Optional[Union[str, Sequence[str]]] = None,
        site: Optional[str] = None,
    ) -> Result:
        """Safety KPIs per scope and period (TRIR, LTIFR, rectification, training, …).

        Every KPI of the catalogue (`safetyscope kpis --catalogue`) per group, site
        or zone and per month, quarter or year, with numerator and denominator;
        values with a zero denominator are null.

        Keywords (None: the default):

        - ``as_of`` (text, default none): Count only what happened before this local
          date or time; periods after it are left out, the period containing it is
          partial.
        - ``kpis`` (list of text, default ``[]``): Only these KPIs (default all).
        - ``periods`` (list of text, default ``["month", "quarter", "year"]``):
          Period kinds: `month`, `quarter`, `year` (default all three).
        - ``scopes`` (list of text, default ``["group", "site"]``): Scope kinds:
          `group`, `site`, `zone` (default group and site).
        - ``site`` (text, default none): Only this site.
        """
        return self.run("kpis", as_of=as_of, kpis=kpis, periods=periods, scopes=scopes, site=site)

    def alerts(
        self,
        *,
        list: Optional[str] = None,
        as_of: Optional[str] = None,
        authorised: Optional[Union[str, Sequence[str]]] = None,
        from_: Optional[str] = None,
        hysteresis: Optional[float] = None,
        ladder: Optional[Any] = None,
        max_gap_minutes: Optional[float] = None,
        min_duration_minutes: Optional[float] = None,
        points: Optional[Any] = None,
        reading_gap_minutes: Optional[float] = None,
        repeat_days: Optional[int] = None,
        repeat_kinds: Optional[Union[str, Sequence[str]]] = None,
        site: Optional[str] = None,
        thresholds: Optional[Mapping[str, float]] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """What to chase as of a date: overdue hazards, repeat violators, fence intrusions, sensor alarm episodes, low safety points.

        One list or all of them, as of a date (default: the day after the latest
        record), over a history that starts 30 days before it unless `from` is
        given.

        Keywords (None: the default):

        - ``list`` (all | overdue | repeats | intrusions | episodes | points,
          default ``all``): Which list.
        - ``as_of`` (text, default none): The local date or time "now" (default: the
          day after the latest event, hazard, reading or position).
        - ``authorised`` (list of text, default ``[]``): People allowed inside
          restricted cells.
        - ``from_`` (text, default none): Start of the history searched for repeat
          violations, intrusions and alarm episodes (default: 30 days before
          `as_of`).
        - ``hysteresis`` (number, default ``0.0``): An alarm episode ends when the
          value falls below alarm − hysteresis.
        - ``ladder`` (structure, default ``{"general": [{"after_hours": 0.0,
          "level": "owner"}, {"after_hours": 24.0, "level": "supervisor"},
          {"after_hours": 72.0, "level": "leadership"}], "major": [{"after_hours":
          0.0, "level": "owner"}, {"after_hours": 8.0, "level": "supervisor"},
          {"after_hours": 24.0, "level": "leadership"}]}``): Escalation ladders of
          overdue hazards.
        - ``max_gap_minutes`` (number, default ``10.0``): Longest gap between
          position fixes inside one intrusion (minutes).
        - ``min_duration_minutes`` (number, default ``0.0``): Episodes shorter than
          this (minutes) are dropped.
        - ``points`` (structure, default ``{"base": 100.0, "floor": 60.0,
          "hazard_general": 2.0, "hazard_major": 10.0, "violation": {"intrusion":
          10.0, "no_harness": 10.0, "no_helmet": 5.0, "no_vest": 3.0, "phone": 3.0,
          "smoking": 10.0}, "violation_default": 5.0}``): The points ledger.
        - ``reading_gap_minutes`` (number, default ``120.0``): Longest gap between
          readings inside one episode (minutes).
        - ``repeat_days`` (integer, default ``3``): Consecutive days that make a
          repeat violator.
        - ``repeat_kinds`` (list of text, default ``[]``): Violation kinds
          considered for repeats (default: all).
        - ``site`` (text, default none): Only this site.
        - ``thresholds`` (mapping of name to number, default ``{}``): Alarm
          thresholds per metric overriding the thresholds table.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("alerts", list=list, as_of=as_of, authorised=authorised, from_=from_, hysteresis=hysteresis, ladder=ladder, max_gap_minutes=max_gap_minutes, min_duration_minutes=min_duration_minutes, points=points, reading_gap_minutes=reading_gap_minutes, repeat_days=repeat_days, repeat_kinds=repeat_kinds, site=site, thresholds=thresholds, lang=lang)

    def forecast(
        self,
        *,
        view: Optional[str] = None,
        from_: Optional[str] = None,
        level: Optional[float] = None,
        origins: Optional[int] = None,
        period: Optional[str] = None,
        site: Optional[str] = None,
        target: Optional[str] = None,
        to: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """Next period's expected events per cell (and zone, site, group) from a Poisson model of the history, with prediction intervals and each cell's main drivers.

        A Poisson GLM with the hours worked as offset, the leading indicators of the
        period before (near misses, hazards reported, hazards overdue, violations,
        as ln(1 + count)) with each cell's mean of them (so that an indicator's
        effect compares a cell with itself), a term for the periods before an
        indicator was recorded, a trend and the season, fitted by IRLS; each cell's
        own level by empirical Bayes, shrunk to its zone. Intervals from the Poisson
        or, when the counts vary more, the negative binomial with Pearson's
        dispersion. Views: the forecast per cell, spread over the hours of the week,
        the model's coefficients with rate ratios, the leading-indicator table
        (group and each site), or its design rows.

        Keywords (None: the default):

        - ``view`` (cells | hours | coefficients | indicators | design, default
          ``cells``): What to return.
        - ``from_`` (text, default none): Start of the history, local time (default:
          the first incident); whole periods only.
        - ``level`` (number, default ``0.9``): Coverage of the prediction intervals.
        - ``origins`` (integer, default ``6``): Backtest: how many of the last
          periods are each predicted from the periods before them.
        - ``period`` (``"week"`` | ``"month"``, default ``"month"``): The period:
          `month` or `week` (local calendar weeks from Monday).
        - ``site`` (text, default none): Only this site.
        - ``target`` (``"injuries"`` | ``"incidents"``, default ``"injuries"``):
          What is forecast: `injuries` (incidents with an injury) or `incidents`
          (near misses included).
        - ``to`` (text, default none): End of the history, exclusive, local time
          (default: the day after the latest record); the forecast is for the period
          after the last whole one.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("forecast", view=view, from_=from_, level=level, origins=origins, period=period, site=site, target=target, to=to, lang=lang)

    def backtest(
        self,
        *,
        view: Optional[str] = None,
        from_: Optional[str] = None,
        level: Optional[float] = None,
        origins: Optional[int] = None,
        period: Optional[str] = None,
        site: Optional[str] = None,
        target: Optional[str] = None,
        to: Optional[str] = None,
        lang: Optional[str] = None,
    ) -> Result:
        """How often the forecasts come true: each of the last periods predicted from the ones before, by the model and three baselines, with the predictive accuracy index, hit rates, deviance and calibration.

        A rolling-origin evaluation: the model refitted at each origin against the
        cell's count in the period before, its long-run mean and the risk map's
        score. The share of events caught by the top 5, 10 and 20 % of cells, that
        share over the share of cells (PAI), the Poisson deviance and a calibration
        table by decile of the prediction.

        Keywords (None: the default):

        - ``view`` (summary | calibration | predictions, default ``summary``): What
          to return.
        - ``from_`` (text, default none): Start of the history, local time (default:
          the first incident); whole periods only.
        - ``level`` (number, default ``0.9``): Coverage of the prediction intervals.
        - ``origins`` (integer, default ``6``): Backtest: how many of the last
          periods are each predicted from the periods before them.
        - ``period`` (``"week"`` | ``"month"``, default ``"month"``): The period:
          `month` or `week` (local calendar weeks from Monday).
        - ``site`` (text, default none): Only this site.
        - ``target`` (``"injuries"`` | ``"incidents"``, default ``"injuries"``):
          What is forecast: `injuries` (incidents with an injury) or `incidents`
          (near misses included).
        - ``to`` (text, default none): End of the history, exclusive, local time
          (default: the day after the latest record); the forecast is for the period
          after the last whole one.
        - ``lang`` (``"zh"`` | ``"en"``, default ``"en"``): Language of the chart's
          words: zh (Chinese) or en (English).
        """
        return self.run("backtest", view=view, from_=from_, level=level, origins=origins, period=period, site=site, target=target, to=to, lang=lang)

    def overview(
        self,
        *,
        from_: Optional[str] = None,
        risk: Optional[Any] = None,
        to: Optional[str] = None,
    ) -> Result:
        """The group overview: every unit ranked by its red and orange cells, with TRIR against target, overdue hazards and open alerts.

        One row for the group and one per site from the risk map by site, the year's
        TRIR (`kpis`), the group's TRIR target (`targets`) and the alerts as of the
        window's end; sites ranked by red cells, then orange cells, then risk score.
        The window is the risk map's (90 days before the day after the latest record
        by default) and is written in `from` and `to`.

        Keywords (None: the default):

        - ``from_`` (text, default none): Window start, local time, inclusive
          (default: the risk map's, 90 days before `to`).
        - ``risk`` (structure, default ``{"alerts": {"as_of": null, "authorised":
          [], "from": null, "hysteresis": 0.0, "ladder": {"general":
          [{"after_hours": 0.0, "level": "owner"}, {"after_hours": 24.0, "level":
          "supervisor"}, {"after_hours": 72.0, "level": "leadership"}], "major":
          [{"after_hours": 0.0, "level": "owner"}, {"after_hours": 8.0, "level":
          "supervisor"}, {"after_hours": 24.0, "level": "leadership"}]},
          "max_gap_minutes": 10.0, "min_duration_minutes": 0.0, "points": {"base":
          100.0, "floor": 60.0, "hazard_general": 2.0, "hazard_major": 10.0,
          "violation": {"intrusion": 10.0, "no_harness": 10.0, "no_helmet": 5.0,
          "no_vest": 3.0, "phone": 3.0, "smoking": 10.0}, "violation_default": 5.0},
          "reading_gap_minutes": 120.0, "repeat_days": 3, "repeat_kinds": [],
          "site": null, "thresholds": {}}, "by": "cell", "dynamic_bands": {"bands":
          [[3.0, "red"], [2.0, "orange"], [1.25, "yellow"]], "boundary_above": true,
          "name": "rate ratio: ≥3 red, ≥2 orange, ≥1.25 yellow (v1)"}, "from": null,
          "half_life_days": null, "lec_bands": {"bands": [[320.0, "red"], [160.0,
          "orange"], [70.0, "yellow"]], "boundary_above": false, "name": "LEC
          D=L×E×C: >320 red, >160 orange, >70 yellow (v1)"}, "ls_bands": {"bands":
          [[20.0, "red"], [15.0, "orange"], [9.0, "yellow"]], "boundary_above":
          true, "name": "LS R=L×S: ≥20 red, ≥15 orange, ≥9 yellow (v1)"},
          "per_exposure": true, "prior_hours": null, "rule": "max", "site": null,
          "to": null, "weights": {"alarm_episode": 2.0, "fatal": 40.0, "first_aid":
          2.0, "intrusion": 1.0, "minor": 5.0, "near_miss": 1.0,
          "open_hazard_general": 1.0, "open_hazard_major": 4.0, "overdue_cap": 3.0,
          "overdue_growth_per_day": 0.14285714285714285, "overdue_hazard_general":
          2.0, "overdue_hazard_major": 8.0, "serious": 15.0, "violation": 0.5}}``):
          The risk map's options (weights, bands, rule, and the alert configuration
          the alerts are counted with); their `from`, `to`, `site` and `by` are
          ignored.
        - ``to`` (text, default none): Window end, local time, exclusive (default:
          the day after the latest record); also the date the TRIR, the targets and
          the alerts are taken as of.
        """
        return self.run("overview", from_=from_, risk=risk, to=to)

    def report(
        self,
        *,
        lang: Optional[str] = None,
        period: Optional[str] = None,
        site: Optional[str] = None,
        top: Optional[int] = None,
    ) -> Result:
        """The safety review-meeting report of a year: one printable HTML document (write it with `--out report.html`) and the table of every number in it.

        Targets against actuals, KPIs by month against the year before, the units
        ranked with their major and high-risk cells and why, statistically real hot
        spots and high-risk hours, overdue hazards by owner and escalation step,
        repeat violators, the points ranking, sensor alarm episodes, and the
        problems and next tasks drawn from them. Each number carries the analysis,
        row and column it comes from (`data-src`, `data-key`, `data-field`, `data-
        value`); the table lists them all. Chinese by default.

        Keywords (None: the default):

        - ``lang`` (text, default none): The language: `zh` (default) or `en`.
        - ``period`` (text, default none): The year reviewed, e.g. `2025` (default:
          the year of the latest record). The report is as of the year's end or the
          end of the data, whichever comes first.
        - ``site`` (text, default none): Only this site (the targets stay the
          group's).
        - ``top`` (integer, default none): Rows per ranked list (default 10).
        """
        return self.run("report", lang=lang, period=period, site=site, top=top)
    # -- end of the generated analyses --

    # -- time-of-day patterns ------------------------------------------
    #
    # Every pattern method accepts the event selection as keywords:
    # ``kinds`` (incidents, hazards, violations), ``from_`` / ``to`` (local
    # time, [from, to)), ``site``, ``zone``, ``categories``, ``severities``,
    # ``by`` (site, zone, cell, category, severity, kind), ``time``
    # (``"start"`` or ``"aoristic"``), ``exposure`` (``"auto"``,
    # ``"records"``, ``"shifts"``, ``"positions"``, ``"uniform"``),
    # ``shifts`` (``[("night", "20:00", "08:00", 0.5), ...]`` or dicts with
    # name/start/end/headcount) and ``weekday_factors`` (seven numbers,
    # Monday first). Unknown keywords raise OptionError.

    def _pattern(self, view: str, select: Mapping[str, Any], **extra: Any) -> Result:
        return self.run("patterns", view=view, **select, **extra)

    def time_profile(self, **select: Any) -> Result:
        """The hour × weekday profile in the dataset's local time: one row
        per group, weekday (0 = Monday) and hour, dense with explicit zeros;
        rows with a null ``hour`` count events whose time of day is unknown.
        Columns ``events``, ``weighted`` (severity-weighted), ``share``,
        ``exposure_hours``, ``rate_per_1000h`` and ``exposure_basis``.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> p = safetyscope.Dataset.open(d).time_profile(by=["zone"]).to_pandas()
        >>> len(p) == 3 * 7 * 25  # 3 zones × 7 days × (24 hours + unknown)
        True
        """
        return self._pattern("profile", select)

    def shift_profile(self, **select: Any) -> Result:
        """Events by shift and hour of shift (hours since the shift began);
        shifts may cross midnight. Events outside every shift or without a
        time of day get rows with a null ``shift``.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> s = safetyscope.Dataset.open(d).shift_profile(
        ...     shifts=[("A", "06:00", "14:00"), ("B", "14:00", "22:00"), ("C", "22:00", "06:00")])
        >>> sorted(set(s.to_pandas()["shift"].dropna()))
        ['A', 'B', 'C']
        """
        return self._pattern("shifts", select)

    def shift_events(self, **select: Any) -> Result:
        """Every selected event with its shift, shift day (the local date the
        shift began) and hour of shift.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> e = safetyscope.Dataset.open(d).shift_events().to_pandas()
        >>> list(e.columns[-3:])
        ['shift', 'shift_day', 'hour_of_shift']
        """
        return self._pattern("shift_events", select)

    def pareto(self, *, dim: Optional[str] = None, **select: Any) -> Result:
        """Pareto of ``dim`` (per group of ``by``): values by events,
        descending, with ``share``, ``cumulative_share`` and ``vital_few``
        (the leading set that makes 80 %).

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> p = safetyscope.Dataset.open(d).pareto().to_pandas()
        >>> round(float(p["cumulative_share"].iloc[-1]), 9)
        1.0
        """
        return self._pattern("pareto", select, dim=dim)

    def crosstab(self, *, rows: Optional[str] = None, columns: Optional[str] = None, **select: Any) -> Result:
        """Cross-tab of events: one row per value of ``rows``, one column
        per value of ``columns`` and ``total``; the last row sums the columns.
        ``rows`` is the option ``dim`` (default ``category``), ``columns``
        defaults to ``zone``.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> x = safetyscope.Dataset.open(d).crosstab().to_pandas()
        >>> list(x.columns)
        ['category', '一车间', '二车间', '仓库', 'total']
        """
        return self._pattern("crosstab", select, dim=rows, columns=columns)

    def pyramid(self, **select: Any) -> Result:
        """The observed accident pyramid (major : minor : near miss) per
        group of ``by`` beside Heinrich's 1 : 29 : 300 and Bird's
        1 : 10 : 30 : 600.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> list(safetyscope.Dataset.open(d).pyramid().to_pandas()["tier"])
        ['major', 'minor', 'property_damage', 'near_miss']
        """
        return self._pattern("pyramid", select)

    # -- targets and follow-up -------------------------------------------

    def track_targets(
        self,
        targets: Union[None, PathLike, Sequence[Mapping[str, Any]]] = None,
        **options: Any,
    ) -> Result:
        """Targets against the KPIs as of a date: ``effective_target`` (from
        a relative baseline such as ``-20% vs 2024``), ``actual`` to date,
        ``expected`` to date (``pro_rata`` or ``seasonal``), ``projection``
        to the period end, ``probability`` of meeting a count target
        (Poisson), ``status`` (achieved, on_track, at_risk, off_track,
        missed, no_data). ``targets``: a CSV/TOML file, a list of dicts
        with kpi/scope/period/target/direction[/baseline], or None for the
        dataset's targets table. Options (``as_of``, ``expectation``,
        ``tolerance``, and ``lang``, the language of the chart's words:
        ``"zh"`` or ``"en"``) as ``safetyscope.analyses()`` lists them for
        ``targets``.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=2)
        >>> t = safetyscope.Dataset.open(d).track_targets(
        ...     [{"kpi": "fatalities", "scope": "group", "period": "2025", "target": 0, "direction": "at_most"}],
        ...     as_of="2025-07-01").to_pandas()
        >>> t.loc[0, "elapsed"].round(3), t.loc[0, "status"] in {"on_track", "at_risk", "off_track", "missed"}
        (np.float64(0.496), True)
        """
        opts: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        if targets is None:
            return self._run("targets", opts)
        if isinstance(targets, (str, os.PathLike)):
            path = os.fspath(targets)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError as e:
                raise NotFoundError(f"not found: {path}") from e
            return Result(self._raw.run("targets", json.dumps(opts), text, path))
        opts["targets"] = [dict(t) for t in targets]
        return self._run("targets", opts)

    def overdue_hazards(self, **options: Any) -> Result:
        """Hazards open past their deadline as of a date, with the
        escalation level reached (owner, supervisor, leadership) and the
        ageing bars as the chart; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> od = safetyscope.Dataset.open(d).overdue_hazards(as_of="2025-07-01").to_pandas()
        >>> bool((od.hours_overdue > 0).all()), set(od.escalation) <= {"owner", "supervisor", "leadership"}
        (True, True)
        """
        return self.run("alerts", list="overdue", **options)

    def repeat_violators(self, **options: Any) -> Result:
        """The same person with the same violation kind on ``repeat_days``
        or more consecutive days; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> r = safetyscope.Dataset.open(d).repeat_violators(from_="2025-03-01", as_of="2025-04-01", repeat_days=4)
        >>> bool((r.to_pandas().days >= 4).all())
        True
        """
        return self.run("alerts", list="repeats", **options)

    def fence_intrusions(self, **options: Any) -> Result:
        """Entry/exit episodes inside restricted cells from the positions,
        with dwell time; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> f = safetyscope.Dataset.open(d).fence_intrusions(from_="2025-12-01", as_of="2026-01-01").to_pandas()
        >>> bool((f.dwell_minutes >= 0).all()), set(f.ended_by) <= {"exit", "gap", "ongoing"}
        (True, True)
        """
        return self.run("alerts", list="intrusions", **options)

    def alarm_episodes(self, **options: Any) -> Result:
        """Sensor alarm episodes (start, end, peak, duration) from readings
        and thresholds; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); truth = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> e = safetyscope.Dataset.open(d).alarm_episodes(from_="2025-01-01", as_of="2026-01-02").to_pandas()
        >>> len(e) == truth["alarm_episodes"], bool((e.peak >= e.threshold).all())
        (True, True)
        """
        return self.run("alerts", list="episodes", **options)

    def points_ledger(self, **options: Any) -> Result:
        """The safety points ledger per person and month of the year of
        ``as_of``; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> p = safetyscope.Dataset.open(d).points_ledger(as_of="2025-07-01").to_pandas()
        >>> sorted(set(p.month))[-1], bool(((p.total < 60) == p.below_floor).all())
        ('2025-06', True)
        """
        return self.run("alerts", list="points", **options)

    def __repr__(self) -> str:
        return f"Dataset(timezone={self.timezone!r}, tables={self.tables})"


_KINDS: dict[str, dict[str, dict[str, Any]]] = {}


def _option_kinds(analysis: str) -> dict[str, dict[str, Any]]:
    """Option name → kind of an analysis, from the registry (cached)."""
    if not _KINDS:
        for a in analyses():
            _KINDS[a["name"]] = {o["name"]: o["kind"] for o in a["options"]}
    return _KINDS.get(analysis, {})


def _convert(name: str, kind: Optional[dict[str, Any]], value: Any) -> Any:
    """A Python value as the option's JSON: one text where a list is
    expected is a list of one; a shift may be a tuple (name, start, end[,
    headcount]); mappings and sequences become objects and lists."""
    if name == "shifts" and isinstance(value, (list, tuple)):
        return [_shift(v) for v in value]
    if kind is not None and kind["type"] == "list":
        if isinstance(value, str):
            value = [value]
        return [_convert(name, kind["of"], v) for v in value]
    if isinstance(value, Mapping):
        return {k: _convert(k, None, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_convert(name, None, v) for v in value]
    return value


def _shift(s: Any) -> dict[str, Any]:
    """A shift from a mapping or a tuple (name, start, end[, headcount])."""
    if isinstance(s, Mapping):
        return dict(s)
    parts = list(s)
    out: dict[str, Any] = {"name": parts[0], "start": parts[1], "end": parts[2]}
    if len(parts) > 3:
        out["headcount"] = parts[3]
    return out


def generate_sample(
    out: PathLike,
    *,
    scale: float = 1.0,
    seed: int = 42,
    year: int = 2025,
    sites: int = 12,
    timezone: str = "Asia/Shanghai",
    plant_hot_cells: bool = True,
    plant_hours: bool = True,
) -> dict[str, Any]:
    """Write the deterministic sample dataset to ``out``; return the ground truth.

    >>> import safetyscope, tempfile
    >>> truth = safetyscope.generate_sample(tempfile.mkdtemp(), scale=0.05, sites=1)
    >>> truth["rows"]["cells"]
    36
    """
    opts = {
        "scale": scale,
        "seed": seed,
        "year": year,
        "sites": sites,
        "timezone": timezone,
        "plant_hot_cells": plant_hot_cells,
        "plant_hours": plant_hours,
    }
    result: dict[str, Any] = json.loads(_internal.generate_sample(os.fspath(out), json.dumps(opts)))
    return result


def ingest(
    data: PathLike,
    out: PathLike,
    *,
    timezone: Optional[str] = None,
    rows_per_file: Optional[int] = None,
) -> dict[str, Any]:
    """Validate a dataset once and write it as a store; return its manifest.

    ``data`` is a dataset directory or mapping file; ``out`` the store
    directory, replaced as a whole once complete (a directory that is not a
    store is never replaced). The store holds the accepted rows of every
    table as canonical Parquet files (``out/<table>/part-NNNNN.parquet``, a
    new file every ``rows_per_file`` rows) and ``_safetyscope.json``: the
    timezone, the roster, the validation report and every file with its
    rows. :meth:`Dataset.open` reads a store's files as queries run, with
    the same results as on the files it came from.

    >>> import safetyscope, tempfile, os
    >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(os.path.join(d, "s"), scale=0.05, sites=1)
    >>> m = safetyscope.ingest(os.path.join(d, "s"), os.path.join(d, "store"))
    >>> m["tables"]["cells"]["rows"], m["report"]["tables"]["cells"]["rows_accepted"]
    (36, 36)
    """
    text = _internal.ingest(os.fspath(data), os.fspath(out), timezone, rows_per_file)
    result: dict[str, Any] = json.loads(text)
    return result


def analyses() -> list[dict[str, Any]]:
    """The registry of analyses: for each, its ``name`` (for
    :meth:`Dataset.run`), ``python`` method, ``summary``, ``params`` and
    ``options`` (name, kind, default, doc), as the core declares them.

    >>> import safetyscope
    >>> risk = next(a for a in safetyscope.analyses() if a["name"] == "risk")
    >>> next(o["default"] for o in risk["options"] if o["name"] == "per_exposure")
    True
    """
    result: list[dict[str, Any]] = json.loads(_internal.registry_json())
    return result


def data_model_markdown() -> str:
    """The canonical data model as Markdown (the content of docs/data-model.md)."""
    return _internal.data_model_markdown()


def draft_mapping(path: PathLike, table: Optional[str] = None, mapping_dir: Optional[PathLike] = None) -> str:
    """A commented draft mapping for a data file, as TOML text: the table
    (guessed unless given), the source column of each canonical column,
    date formats checked to read the sample one way only, a grid for
    longitude / latitude, null sentinels and value maps. Lines to check are
    marked ``EDIT``. The file is named relative to ``mapping_dir``, where the
    draft is meant to be saved (docs/mapping-walkthrough.md).
    """
    return _internal.draft_mapping(
        os.fspath(path), table, None if mapping_dir is None else os.fspath(mapping_dir)
    )


def set_allow_outside(allow: bool = True) -> None:
    """Let the paths in mapping files lead outside the mapping's own
    directory (absolute paths, ``..``, links out, other buckets), for the
    rest of the process. Off by default: a mapping handed to you can then
    read only the files beside it (docs/security.md).

    >>> import safetyscope
    >>> safetyscope.set_allow_outside(False)
    """
    _internal.set_allow_outside(bool(allow))


__all__ = [
    "Dataset",
    "Result",
    "Chart",
    "ValidationReport",
    "generate_sample",
    "ingest",
    "data_model_markdown",
    "analyses",
    "set_allow_outside",
    "draft_mapping",
    "SafetyscopeError",
    "SchemaError",
    "DataError",
    "MappingError",
    "OptionError",
    "QueryError",
    "SafetyscopeIOError",
    "NotFoundError",
]
