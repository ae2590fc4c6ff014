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
    ``time_unknown`` and ``error``.
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
        tmp = os.path.join(os.path.dirname(p) or ".", f".{os.path.basename(p)}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


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

    def sql(self, query: str) -> Result:
        """Run SQL over the canonical tables.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> safetyscope.Dataset.open(d).sql("select count(*) as n from cells").to_arrow()["n"][0].as_py()
        36
        """
        return Result(self._raw.sql(query))

    def heatmap(
        self,
        *,
        kinds: Sequence[str] = ("incidents",),
        from_: Optional[str] = None,
        to: Optional[str] = None,
        site: Optional[str] = None,
        by: str = "cell",
    ) -> Result:
        """Events per cell of the site plan, with an SVG grid chart.

        ``kinds``: event tables counted into ``events`` (incidents, hazards,
        violations); ``from_`` / ``to``: local-time window [from, to);
        ``site``: one site only; ``by``: ``"cell"`` (with the chart),
        ``"zone"`` or ``"site"`` (counts summed).
        """
        opts = {"kinds": list(kinds), "from": from_, "to": to, "site": site, "by": by}
        return Result(self._raw.heatmap(json.dumps(opts)))

    def hotspots(
        self,
        *,
        kinds: Sequence[str] = ("incidents",),
        from_: Optional[str] = None,
        to: Optional[str] = None,
        site: Optional[str] = None,
        weights: str = "queen",
        distance: Optional[float] = None,
        transform: str = "binary",
        alpha: float = 0.05,
        fdr: bool = True,
        permutations: int = 0,
        seed: int = 42,
    ) -> Result:
        """Getis-Ord Gi* hot and cold spots over the cells of each site.

        ``weights``: ``"rook"``, ``"queen"`` or ``"distance"`` (with
        ``distance`` in metres between cell centroids); ``transform``:
        ``"binary"`` (classic Gi*, PySAL ``transform="B"``) or ``"row"``;
        classes use Benjamini–Hochberg q-values unless ``fdr=False``;
        ``permutations`` adds a seeded pseudo p-value (``p_sim``).

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.2, sites=1)
        >>> hs = safetyscope.Dataset.open(d).hotspots(weights="rook").to_pandas()
        >>> len(hs), int((hs["neighbors"] == 2).sum())  # 36 cells, 4 corners
        (36, 4)
        """
        opts = {
            "kinds": list(kinds),
            "from": from_,
            "to": to,
            "site": site,
            "weights": weights,
            "distance": distance,
            "transform": transform,
            "alpha": alpha,
            "fdr": fdr,
            "permutations": permutations,
            "seed": seed,
        }
        return Result(self._raw.hotspots(json.dumps(opts)))

    def risk_map(
        self,
        *,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        site: Optional[str] = None,
        by: str = "cell",
        weights: Optional[Mapping[str, float]] = None,
        half_life_days: Optional[float] = None,
        per_exposure: bool = True,
        prior_hours: Optional[float] = None,
        lec_bands: Optional[Mapping[str, Any]] = None,
        ls_bands: Optional[Mapping[str, Any]] = None,
        dynamic_bands: Optional[Mapping[str, Any]] = None,
        rule: str = "max",
    ) -> Result:
        """The risk four-colour map (风险四色图): red / orange / yellow / blue.

        The window ``[from_, to)`` defaults to the 90 days before the day
        after the latest event. ``weights`` overrides evidence weights by name
        (``near_miss``, ``minor``, ``open_hazard_major``, ``violation``, …);
        ``half_life_days`` decays older events; ``per_exposure`` divides by
        hours worked with empirical-Bayes smoothing (``prior_hours`` fixes its
        strength); band tables are ``{"name": ..., "bands": [[threshold,
        "red"], ...], "boundary_above": bool}``; ``rule`` is ``"max"``,
        ``"static"`` or ``"dynamic"``; ``by`` rolls up to ``"zone"`` or
        ``"site"`` (the level of the worst cell).

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.2, sites=1)
        >>> rm = safetyscope.Dataset.open(d).risk_map(by="site").to_pandas()
        >>> int(rm.loc[0, ["red_cells", "orange_cells", "yellow_cells", "blue_cells"]].sum())
        36
        """
        opts: dict[str, Any] = {
            "from": from_,
            "to": to,
            "site": site,
            "by": by,
            "half_life_days": half_life_days,
            "per_exposure": per_exposure,
            "prior_hours": prior_hours,
            "rule": rule,
        }
        if weights:
            opts["weights"] = dict(weights)
        for key, table in (("lec_bands", lec_bands), ("ls_bands", ls_bands), ("dynamic_bands", dynamic_bands)):
            if table is not None:
                opts[key] = dict(table)
        return Result(self._raw.risk_map(json.dumps(opts)))

    def density(
        self,
        *,
        source: str = "incidents",
        site: Optional[str] = None,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        kernel: str = "gaussian",
        bandwidth: Optional[float] = None,
        bandwidth_rule: str = "scott",
        resolution: float = 1.0,
        bbox: Optional[Sequence[float]] = None,
        weight: Optional[str] = None,
    ) -> Result:
        """Kernel density raster of point data over one site's plan.

        ``source``: incidents, hazards, violations or positions; ``kernel``:
        gaussian or epanechnikov; ``bandwidth`` in metres (default: Scott's
        rule scaled by the points' spread); ``resolution``: raster cell size
        in metres; ``bbox``: ``[x_min, y_min, x_max, y_max]`` (default the
        site plan); ``weight``: a numeric column weighting each point. The
        ``density`` column integrates to one, ``intensity`` is points per m².

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.2, sites=1)
        >>> kd = safetyscope.Dataset.open(d).density(site="U01", resolution=2.0).to_pandas()
        >>> len(kd)  # a 60 m × 60 m plan at 2 m
        900
        """
        opts = {
            "source": source,
            "site": site,
            "from": from_,
            "to": to,
            "kernel": kernel,
            "bandwidth": bandwidth,
            "bandwidth_rule": bandwidth_rule,
            "resolution": resolution,
            "bbox": list(bbox) if bbox is not None else None,
            "weight": weight,
        }
        return Result(self._raw.density(json.dumps(opts)))

    def emerging_hotspots(
        self,
        *,
        kinds: Sequence[str] = ("incidents",),
        site: Optional[str] = None,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        slice: str = "month",
        weights: str = "queen",
        alpha: float = 0.05,
    ) -> Result:
        """Emerging hot spots: Gi* in every week or month and a Mann-Kendall
        trend test on each cell's z-scores, as the categories new,
        consecutive, intensifying, persistent, diminishing, sporadic,
        oscillating, historical (``cold_`` for cold spots) or no_pattern.

        The window defaults to the 365 days before the day after the latest
        event; ``history`` shows each slice as ``H`` (hot), ``C`` (cold) or
        ``.``.
        """
        opts = {"kinds": list(kinds), "site": site, "from": from_, "to": to, "slice": slice, "weights": weights, "alpha": alpha}
        return Result(self._raw.emerging_hotspots(json.dumps(opts)))

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
        opts = _pattern_options(select)
        opts.update({k: v for k, v in extra.items() if v is not None})
        return Result(self._raw.patterns(view, json.dumps(opts)))

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

    def peaks(
        self,
        *,
        grid: str = "hour_weekday",
        alpha: float = 0.05,
        cells: bool = False,
        **select: Any,
    ) -> Result:
        """High-risk periods: each hour × weekday cell (``grid="hour"``:
        each hour of the day) against the rest of its group's week by the
        exact conditional Poisson rate test with exposure (statsmodels
        ``test_poisson_2indep(method="exact-cond")``), rate ratio with an
        exact confidence interval, Benjamini–Hochberg q-values across all
        cells. Returns the ranked periods (adjacent significant hours
        merged) or, with ``cells=True``, every tested cell.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.3, sites=2)
        >>> roster = [("day", "08:00", "20:00", 1.0), ("night", "20:00", "08:00", 0.5)]
        >>> top = safetyscope.Dataset.open(d).peaks(
        ...     grid="hour", exposure="shifts", shifts=roster,
        ...     weekday_factors=[1, 1, 1, 1, 1, 0.8, 0.6]).to_pandas()
        >>> (2, 4) in list(zip(top["hour_from"], top["hour_to"]))  # the planted night hours
        True

        Without the roster the day hours, when twice as many people work,
        would show as peaks: exposure is what makes a peak a risk.
        """
        return self._pattern(
            "peak_cells" if cells else "peaks", select, grid=grid, alpha=alpha
        )

    def trends(self, **select: Any) -> Result:
        """Monthly events per group with 3- and 12-month rolling means,
        year-over-year change, the seasonal index and, where exposure
        records exist, the rate per million hours.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> t = safetyscope.Dataset.open(d).trends().to_pandas()
        >>> len(t), t["month"].iloc[0]
        (24, '2024-01')
        """
        return self._pattern("trends", select)

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

    def pareto(self, *, dim: str = "category", **select: Any) -> Result:
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

    def crosstab(self, *, rows: str = "category", columns: str = "zone", **select: Any) -> Result:
        """Cross-tab of events: one row per value of ``rows``, one column
        per value of ``columns`` and ``total``; the last row sums the columns.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> x = safetyscope.Dataset.open(d).crosstab().to_pandas()
        >>> list(x.columns)
        ['category', 'warehouse', 'workshop-1', 'workshop-2', 'total']
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

    def knox(
        self,
        *,
        distance: float = 5.0,
        days: float = 3.0,
        permutations: int = 199,
        seed: int = 1,
        **select: Any,
    ) -> Result:
        """Near-repeat space-time clustering (Knox): pairs of events at most
        ``distance`` metres and ``days`` days apart, against the expectation
        without interaction; Poisson and seeded permutation p-values. Events
        without x/y are counted in ``without_xy``.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.05, sites=1)
        >>> k = safetyscope.Dataset.open(d).knox(permutations=0).to_pandas()
        >>> int(k["statistic"][0]) <= int(k["close_space"][0])
        True
        """
        opts = {
            "events": _pattern_options(select),
            "distance": distance,
            "days": days,
            "permutations": permutations,
            "seed": seed,
        }
        return Result(self._raw.knox(json.dumps(opts)))

    # -- targets and follow-up -------------------------------------------

    def kpis(
        self,
        *,
        periods: Sequence[str] = ("month", "quarter", "year"),
        scopes: Sequence[str] = ("group", "site"),
        site: Optional[str] = None,
        kpis: Sequence[str] = (),
        as_of: Optional[str] = None,
    ) -> Result:
        """Safety KPIs per scope (``group``, site, ``site/zone``) and local
        calendar period, long format: ``scope_type``, ``scope``,
        ``period_type``, ``period``, ``partial``, ``kpi``, ``value``,
        ``unit``, ``numerator``, ``denominator``. Formulas: docs/kpis.md.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=2)
        >>> k = safetyscope.Dataset.open(d).kpis(periods=["year"], scopes=["group"], kpis=["trir"]).to_pandas()
        >>> row = k[k.period == "2025"].iloc[0]
        >>> bool(abs(row.value - row.numerator * 200_000 / row.denominator) < 1e-9)
        True
        """
        opts = {"periods": list(periods), "scopes": list(scopes), "site": site, "kpis": list(kpis), "as_of": as_of}
        return Result(self._raw.kpis(json.dumps(opts)))

    def track_targets(
        self,
        targets: Union[None, PathLike, Sequence[Mapping[str, Any]]] = None,
        *,
        as_of: Optional[str] = None,
        expectation: str = "pro_rata",
        tolerance: float = 0.1,
    ) -> Result:
        """Targets against the KPIs as of a date: ``effective_target`` (from
        a relative baseline such as ``-20% vs 2024``), ``actual`` to date,
        ``expected`` to date (``pro_rata`` or ``seasonal``), ``projection``
        to the period end, ``probability`` of meeting a count target
        (Poisson), ``status`` (achieved, on_track, at_risk, off_track,
        missed, no_data). ``targets``: a CSV/TOML file, a list of dicts
        with kpi/scope/period/target/direction[/baseline], or None for the
        dataset's targets table.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=2)
        >>> t = safetyscope.Dataset.open(d).track_targets(
        ...     [{"kpi": "fatalities", "scope": "group", "period": "2025", "target": 0, "direction": "at_most"}],
        ...     as_of="2025-07-01").to_pandas()
        >>> t.loc[0, "elapsed"].round(3), t.loc[0, "status"] in {"on_track", "at_risk", "off_track", "missed"}
        (np.float64(0.496), True)
        """
        opts: dict[str, Any] = {"as_of": as_of, "expectation": expectation, "tolerance": tolerance}
        if targets is None:
            return Result(self._raw.track_targets(json.dumps(opts)))
        if isinstance(targets, (str, os.PathLike)):
            path = os.fspath(targets)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError as e:
                raise NotFoundError(f"not found: {path}") from e
            return Result(self._raw.track_targets(json.dumps(opts), text, path))
        opts["targets"] = [dict(t) for t in targets]
        return Result(self._raw.track_targets(json.dumps(opts)))

    def alerts(self, *, list: str = "all", **options: Any) -> Result:
        """What to chase as of a date, one row per item: ``kind``
        (overdue_hazard, repeat_violation, fence_intrusion, sensor_alarm,
        low_points), ``subject``, ``site``, ``zone``, ``cell``, ``since``,
        ``level``, ``detail``. ``list`` picks one detailed list instead:
        ``overdue``, ``repeats``, ``intrusions``, ``episodes``, ``points``.

        Options: ``as_of`` (default: the day after the latest record),
        ``from_`` (history start, default 30 days before), ``site``,
        ``ladder`` ({"general": [{"after_hours": 0, "level": "owner"}, ...],
        "major": [...]}), ``repeat_days`` (3), ``repeat_kinds``,
        ``authorised`` (people allowed in fenced cells),
        ``max_gap_minutes`` (10), ``thresholds`` ({metric: alarm}),
        ``hysteresis``, ``min_duration_minutes``, ``reading_gap_minutes``
        (120), ``points`` (ledger rules).

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); truth = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> r = safetyscope.Dataset.open(d).alerts(list="repeats", from_="2025-03-01", as_of="2025-04-01").to_pandas()
        >>> ("U01-P0001", "no_helmet", 4) in set(zip(r.person_id, r.kind, r.days))
        True
        """
        opts = {("from" if k == "from_" else k): v for k, v in options.items() if v is not None}
        return Result(self._raw.alerts(list, json.dumps(opts)))

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
        return self.alerts(list="overdue", **options)

    def repeat_violators(self, **options: Any) -> Result:
        """The same person with the same violation kind on ``repeat_days``
        or more consecutive days; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> r = safetyscope.Dataset.open(d).repeat_violators(from_="2025-03-01", as_of="2025-04-01", repeat_days=4)
        >>> bool((r.to_pandas().days >= 4).all())
        True
        """
        return self.alerts(list="repeats", **options)

    def fence_intrusions(self, **options: Any) -> Result:
        """Entry/exit episodes inside restricted cells from the positions,
        with dwell time; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> f = safetyscope.Dataset.open(d).fence_intrusions(from_="2025-12-01", as_of="2026-01-01").to_pandas()
        >>> bool((f.dwell_minutes >= 0).all()), set(f.ended_by) <= {"exit", "gap", "ongoing"}
        (True, True)
        """
        return self.alerts(list="intrusions", **options)

    def alarm_episodes(self, **options: Any) -> Result:
        """Sensor alarm episodes (start, end, peak, duration) from readings
        and thresholds; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); truth = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> e = safetyscope.Dataset.open(d).alarm_episodes(from_="2025-01-01", as_of="2026-01-02").to_pandas()
        >>> len(e) == truth["alarm_episodes"], bool((e.peak >= e.threshold).all())
        (True, True)
        """
        return self.alerts(list="episodes", **options)

    def points_ledger(self, **options: Any) -> Result:
        """The safety points ledger per person and month of the year of
        ``as_of``; options as :meth:`alerts`.

        >>> import safetyscope, tempfile
        >>> d = tempfile.mkdtemp(); _ = safetyscope.generate_sample(d, scale=0.1, sites=1)
        >>> p = safetyscope.Dataset.open(d).points_ledger(as_of="2025-07-01").to_pandas()
        >>> sorted(set(p.month))[-1], bool(((p.total < 60) == p.below_floor).all())
        ('2025-06', True)
        """
        return self.alerts(list="points", **options)

    def __repr__(self) -> str:
        return f"Dataset(timezone={self.timezone!r}, tables={self.tables})"


def _pattern_options(select: Mapping[str, Any]) -> dict[str, Any]:
    """Translate the Python selection keywords to the pattern options."""
    opts: dict[str, Any] = {}
    for key, value in select.items():
        if value is None:
            continue
        name = "from" if key == "from_" else key
        if name in ("kinds", "by", "categories", "severities", "weekday_factors"):
            value = [value] if isinstance(value, str) else list(value)
        if name == "shifts":
            value = [_shift(s) for s in value]
        opts[name] = value
    return opts


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


def data_model_markdown() -> str:
    """The canonical data model as Markdown (the content of docs/data-model.md)."""
    return _internal.data_model_markdown()


__all__ = [
    "Dataset",
    "Result",
    "Chart",
    "ValidationReport",
    "generate_sample",
    "ingest",
    "data_model_markdown",
    "SafetyscopeError",
    "SchemaError",
    "DataError",
    "MappingError",
    "OptionError",
    "QueryError",
    "SafetyscopeIOError",
    "NotFoundError",
]
