"""The nightly job on a real Ballista cluster (a scheduler and two executors
on 127.0.0.1, the `safetyscope-cluster` binary) against the same job in one
process: same files, same rows, numbers equal to 1e-9; and what happens when
an executor is lost in the middle of a run.

    pytest tests/cluster --bin CLI --cluster-bin CLUSTER
"""

from __future__ import annotations

import json
import math
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

JOB = """
data = "sample"
store = "store"
out = "{out}"
as_of = "2025-12-01"

[[analysis]]
name = "risk"
kind = "risk"
options = {{ from = "2025-09-01", to = "2025-12-01", half_life_days = 30 }}
formats = ["parquet", "csv"]

[[analysis]]
name = "risk-by-zone"
kind = "risk"
options = {{ from = "2025-09-01", to = "2025-12-01", by = "zone" }}

[[analysis]]
name = "hotspots"
kind = "hotspots"
options = {{ site = "U01", from = "2025-01-01", to = "2025-12-01" }}

[[analysis]]
name = "heatmap"
kind = "heatmap"

[[analysis]]
name = "peaks"
kind = "peaks"
options = {{ by = ["site"] }}

[[analysis]]
name = "profile"
kind = "patterns"
options = {{ view = "profile", by = ["site", "zone"] }}

[[analysis]]
name = "trends"
kind = "trends"

[[analysis]]
name = "kpis"
kind = "kpis"
options = {{ periods = ["month", "quarter", "year"], scopes = ["group", "site", "zone"] }}
partition_by = ["scope", "period"]

[[analysis]]
name = "targets"
kind = "targets"

[[analysis]]
name = "alerts"
kind = "alerts"
formats = ["parquet", "json"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Cluster:
    """A scheduler and executors in the background, stopped at the end."""

    def __init__(self, binary: str, root: pathlib.Path) -> None:
        self.binary, self.root = binary, root
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start("scheduler", [
            "scheduler", "--bind-host", "127.0.0.1", "--external-host", "127.0.0.1",
            "--bind-port", str(self.port), "--executor-timeout-seconds", "5",
            "--expire-dead-executor-interval-seconds", "1",
        ])
        wait_port(self.port)

    def start(self, name: str, args: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT)

    def executor(self, name: str) -> None:
        flight, grpc = free_port(), free_port()
        work = self.root / name
        work.mkdir(exist_ok=True)
        self.start(name, [
            "executor", "--bind-host", "127.0.0.1", "--external-host", "127.0.0.1",
            "--scheduler-host", "127.0.0.1", "--scheduler-port", str(self.port),
            "--bind-port", str(flight), "--bind-grpc-port", str(grpc),
            "--work-dir", str(work), "--vcores", "1", "--executor-heartbeat-interval-seconds", "1",
        ])
        wait_port(flight)

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait()

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    @property
    def url(self) -> str:
        return f"df://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def cluster(cluster_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(cluster_bin, tmp_path_factory.mktemp("cluster"))
    try:
        c.executor("executor-1")
        c.executor("executor-2")
        time.sleep(2)  # the executors register with the scheduler
        yield c
    finally:
        c.stop()


def files(d: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.name != "run-summary.json")


def read(p: pathlib.Path) -> pa.Table:
    if p.suffix == ".parquet":
        return pq.read_table(p)
    if p.suffix == ".csv":
        return pcsv.read_csv(p)
    import json
    return pa.Table.from_pylist(json.loads(p.read_text()))


def assert_same(a: pa.Table, b: pa.Table, name: str) -> None:
    assert a.schema.names == b.schema.names, name
    assert a.num_rows == b.num_rows, name
    ra, rb = a.to_pylist(), b.to_pylist()
    for i, (x, y) in enumerate(zip(ra, rb)):
        for k in x:
            u, v = x[k], y[k]
            if isinstance(u, float) and isinstance(v, float):
                assert (math.isnan(u) and math.isnan(v)) or math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9), (name, i, k, u, v)
            else:
                assert u == v, (name, i, k, u, v)


def test_the_job_on_the_cluster_equals_one_process(cli: str, cluster_bin: str, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    subprocess.run([cli, "generate", "--out", str(tmp_path / "sample"), "--scale", "0.2", "--sites", "3"], check=True, capture_output=True)
    (tmp_path / "local.toml").write_text(JOB.format(out="out-local"))
    (tmp_path / "cluster.toml").write_text(JOB.format(out="out-cluster"))
    subprocess.run([cli, "run", str(tmp_path / "local.toml")], check=True, capture_output=True)
    before = {j["job_id"] for j in scheduler_jobs(cluster)}
    # `safetyscope run --cluster` hands the job to safetyscope-cluster.
    p = subprocess.run([cli, "run", str(tmp_path / "cluster.toml"), "--cluster", cluster.url],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    local, remote = tmp_path / "out-local", tmp_path / "out-cluster"
    assert files(local) == files(remote)
    assert len(files(local)) > 20  # the KPI partitions and every result
    for f in files(local):
        assert_same(read(local / f), read(remote / f), f)
    # The queries ran on the executors: the scheduler's jobs of this run
    # all completed, with their tasks.
    jobs = [j for j in scheduler_jobs(cluster) if j["job_id"] not in before]
    assert jobs and all(j["status"] == "Completed" for j in jobs)
    assert sum(len(s["tasks"]) for j in jobs for s in j["stages"]) >= len(jobs)


def scheduler_jobs(cluster: Cluster) -> list[dict]:
    """The scheduler's jobs with their stages (its REST API): status, each
    stage's plan, rows in and out, and its tasks."""
    def get(path: str) -> object:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.port}{path}", timeout=30) as r:
            return json.load(r)
    jobs = get("/api/jobs")
    assert isinstance(jobs, list)
    for j in jobs:
        j["stages"] = get(f"/api/job/{j['job_id']}/stages")["stages"]  # type: ignore[index]
    return jobs


CALL = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\((\d+)<([^>]*)>)(.*)$")


def bytes_read_from(trace: pathlib.Path, under: pathlib.Path) -> dict[str, int]:
    """Bytes that `read` and `pread64` calls returned per file under
    `under`, in an `strace -f -y` log (calls interrupted by another thread
    resume on a later line)."""
    pending: dict[str, str] = {}
    total: dict[str, int] = {}
    root = str(under.resolve())
    for line in trace.read_text(errors="replace").splitlines():
        m = CALL.match(line)
        if not m:
            continue
        tid, resumed, name, _fd, path, rest = m.groups()
        if name is not None:
            if name not in ("read", "pread64"):
                continue
            if rest.endswith("<unfinished ...>"):
                pending[tid] = path
                continue
        else:
            if resumed not in ("read", "pread64") or tid not in pending:
                continue
            path = pending.pop(tid)
        n = re.search(r"= (-?\d+)", rest)
        if n and int(n.group(1)) > 0 and path.startswith(root + "/"):
            total[path] = total.get(path, 0) + int(n.group(1))
    return total


def test_row_work_runs_on_the_executors_and_the_runner_reads_no_rows(cli: str, cluster_bin: str, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    """Every kind of analysis in one job on the cluster (the alarm-episode
    and fence-intrusion lists, the KPIs, the targets, the risk map, a
    density raster, the Knox test, the heat map, hot spots, emerging hot
    spots, patterns, peaks, trends, alerts, the forecast and its backtest,
    the overview and the report): the executors read the tables and fold or
    count their rows (the scheduler's
    stages that run `alarm_episodes`, `fence_episodes`, `kpi_meter`,
    `kde_raster` and `knox_test` completed, and their scans read the
    rows); the job runner reads under 1 % of the store's bytes for all of
    them together (counted with strace: the files' footers for their
    schemas, where one process reads every incident, hazard and violation
    for the risk map), and every output equals the one-process one."""
    subprocess.run([cli, "generate", "--out", str(tmp_path / "sample"), "--scale", "2", "--sites", "3"], check=True, capture_output=True)
    subprocess.run([cli, "ingest", str(tmp_path / "sample"), "--out", str(tmp_path / "store")], check=True, capture_output=True)
    job = """
data = "store"
out = "{out}"
as_of = "2026-01-01"

[[analysis]]
name = "intrusions"
kind = "alerts"
options = {{ list = "intrusions" }}

[[analysis]]
name = "episodes"
kind = "alerts"
options = {{ list = "episodes", from = "2025-10-01" }}

[[analysis]]
name = "kpis"
kind = "kpis"
options = {{ scopes = ["group", "site", "zone"] }}

[[analysis]]
name = "risk"
kind = "risk"
options = {{ from = "2025-09-01", to = "2025-12-01", half_life_days = 30 }}

[[analysis]]
name = "targets"
kind = "targets"

[[analysis]]
name = "density"
kind = "density"
options = {{ site = "U01", resolution = 5 }}

[[analysis]]
name = "knox"
kind = "knox"
options = {{ site = "U01", from = "2025-10-01", permutations = 19 }}

[[analysis]]
name = "heatmap"
kind = "heatmap"
options = {{ by = "zone" }}

[[analysis]]
name = "hotspots"
kind = "hotspots"
options = {{ site = "U01", from = "2025-01-01" }}

[[analysis]]
name = "emerging"
kind = "emerging"
options = {{ site = "U01", from = "2025-01-01" }}

[[analysis]]
name = "profile"
kind = "patterns"
options = {{ view = "profile", by = ["site"] }}

[[analysis]]
name = "peaks"
kind = "peaks"

[[analysis]]
name = "trends"
kind = "trends"

[[analysis]]
name = "alerts"
kind = "alerts"

[[analysis]]
name = "forecast"
kind = "forecast"

[[analysis]]
name = "backtest"
kind = "backtest"

[[analysis]]
name = "overview"
kind = "overview"

[[analysis]]
name = "report"
kind = "report"
options = {{ period = "2025" }}
"""
    (tmp_path / "local.toml").write_text(job.format(out="out-local"))
    (tmp_path / "cluster.toml").write_text(job.format(out="out-cluster"))
    subprocess.run([cli, "run", str(tmp_path / "local.toml")], check=True, capture_output=True)
    before = {j["job_id"] for j in scheduler_jobs(cluster)}
    trace = tmp_path / "runner.strace"
    p = subprocess.run(["strace", "-f", "-y", "-e", "trace=read,pread64", "-o", str(trace),
                        cluster_bin, "run", str(tmp_path / "cluster.toml"), "--cluster", cluster.url],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    local, remote = tmp_path / "out-local", tmp_path / "out-cluster"
    assert files(local) == files(remote)
    for f in files(local):
        assert_same(read(local / f), read(remote / f), f)
    assert pq.read_table(local / "intrusions.parquet").num_rows > 10
    assert pq.read_table(local / "episodes.parquet").num_rows > 3
    assert pq.read_table(local / "targets.parquet").num_rows > 3

    # Of each file, the runner reads at most its size (a buffered reader
    # that seeks reads some bytes twice): the manifest, the site plan
    # (`cells`, a few KB that every grid is drawn from) and the footers of
    # the other files, for their schemas.
    store = tmp_path / "store"
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    per_file = bytes_read_from(trace, store)
    runner = sum(min(n, pathlib.Path(f).stat().st_size) for f, n in per_file.items())
    assert 0 < runner <= 0.01 * size, (per_file, size)

    jobs = [j for j in scheduler_jobs(cluster) if j["job_id"] not in before]
    assert jobs and all(j["status"] == "Completed" for j in jobs)
    folds = [("fence_episodes", "positions"), ("alarm_episodes", "readings")]
    folds += [("kpi_meter", t) for t in ("incidents", "hazards", "activities", "exposure", "violations")]
    folds += [("kde_raster", "incidents"), ("knox_test", "incidents")]
    for fold, table in folds:
        stages = [s for j in jobs for s in j["stages"] if fold in s["stage_plan"]]
        assert stages, (fold, len(jobs), sorted({m for j in jobs for s in j["stages"] for m in re.findall(r"aggr=\[(\w+)", s["stage_plan"])}))
        assert all(s["stage_status"] == "Successful" and s["tasks"] for s in stages), fold
        # A job that folds also scans the table on the executors (in the
        # fold's stage, or in a stage before it that groups the rows by day).
        scans = [s for j in jobs if any(fold in x["stage_plan"] for x in j["stages"])
                 for s in j["stages"] if f"{table}/part-" in s["stage_plan"]]
        assert scans and sum(s["input_rows"] for s in scans) > 0, (fold, table)
    pos = pq.read_table(store / "positions").to_pandas()
    window = (pos["ts"] >= pd.Timestamp("2025-12-02", tz="Asia/Shanghai")) & (pos["ts"] < pd.Timestamp("2026-01-01", tz="Asia/Shanghai"))
    scans = [s for j in jobs for s in j["stages"] if "fence_episodes" in s["stage_plan"] and "positions/part-" in s["stage_plan"]]
    # The intrusion list's scan read exactly the window's fixes (the alerts
    # read them again for their own window).
    assert int(window.sum()) in [s["input_rows"] for s in scans]


def test_an_error_raised_on_an_executor_keeps_its_exit_code(cli: str, cluster_bin: str, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    """A density raster too large for its points is refused inside the plan
    (on an executor, where the points are gathered): the job fails with the
    one-process message and exit code 2, not as a generic query failure."""
    subprocess.run([cli, "generate", "--out", str(tmp_path / "sample"), "--scale", "0.05", "--sites", "1"], check=True, capture_output=True)
    subprocess.run([cli, "ingest", str(tmp_path / "sample"), "--out", str(tmp_path / "store")], check=True, capture_output=True)
    job = 'data = "store"\nout = "out"\n\n[[analysis]]\nname = "density"\nkind = "density"\noptions = { site = "U01", resolution = 0.01 }\n'
    (tmp_path / "job.toml").write_text(job)
    local = subprocess.run([cli, "run", str(tmp_path / "job.toml")], capture_output=True, text=True, timeout=300)
    remote = subprocess.run([cluster_bin, "run", str(tmp_path / "job.toml"), "--cluster", cluster.url],
                            capture_output=True, text=True, timeout=300)
    assert local.returncode == 2, local.stderr
    assert remote.returncode == 2, remote.stderr
    message = "raster cells is too many; use a coarser resolution"
    assert message in local.stderr and message in remote.stderr
    assert local.stderr.strip().splitlines()[-1] == remote.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "density.parquet").exists()


def test_a_cluster_that_is_not_there_is_a_clear_error(cli: str, cluster_bin: str, tmp_path: pathlib.Path) -> None:
    subprocess.run([cli, "generate", "--out", str(tmp_path / "sample"), "--scale", "0.05", "--sites", "1"], check=True, capture_output=True)
    (tmp_path / "job.toml").write_text(JOB.format(out="out"))
    p = subprocess.run([cluster_bin, "run", str(tmp_path / "job.toml"), "--cluster", f"df://127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 4, p.stderr
    assert "127.0.0.1" in p.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    p = subprocess.run([cluster_bin, "run", str(tmp_path / "job.toml"), "--cluster", "http://x"], capture_output=True, text=True)
    assert p.returncode == 2 and "df://HOST:PORT" in p.stderr


def test_losing_an_executor_mid_run(cli: str, cluster_bin: str, tmp_path: pathlib.Path) -> None:
    """One of two executors is killed (SIGKILL) while the job runs. Either
    the scheduler notices before a stage needs what the lost executor held,
    runs the remaining tasks on the other executor and the job completes
    with the one-process results; or a running stage cannot fetch the
    shuffle output the lost executor held (or the runner cannot fetch a
    query's results from it), and the run fails with exit code 4 and a
    message naming the executor and the failed fetch, writes no run
    summary, and every result file written before the loss is complete and
    equal to the one-process result; or the client keeps waiting for
    results from the dead executor and the runner gives up after
    `--timeout-seconds` with exit code 4 (same checks on what was written).
    Which one happens depends on when the executor dies; all are checked."""
    c = Cluster(cluster_bin, tmp_path)
    try:
        c.executor("executor-1")
        c.executor("executor-2")
        time.sleep(2)
        subprocess.run([cli, "generate", "--out", str(tmp_path / "sample"), "--scale", "2", "--sites", "6"], check=True, capture_output=True)
        (tmp_path / "local.toml").write_text(JOB.format(out="out-local"))
        (tmp_path / "cluster.toml").write_text(JOB.format(out="out-cluster"))
        subprocess.run([cli, "run", str(tmp_path / "local.toml")], check=True, capture_output=True)
        job = subprocess.Popen([cluster_bin, "run", str(tmp_path / "cluster.toml"), "--cluster", c.url, "--timeout-seconds", "90"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill an executor once the analyses have started on the cluster.
        log = tmp_path / "scheduler.log"
        end = time.time() + 120
        while time.time() < end and "Job submitted" not in log.read_text(errors="replace"):
            time.sleep(0.05)
        c.kill("executor-2")
        out, err = job.communicate(timeout=900)
        local, remote = tmp_path / "out-local", tmp_path / "out-cluster"
        done = files(remote) if remote.exists() else []
        assert not [f for f in done if pathlib.Path(f).name.startswith(".")], done
        if job.returncode == 0:
            assert done == files(local)
            assert (remote / "run-summary.json").exists()
        else:
            assert job.returncode == 4, err
            lost = "Executor" in err and ("fetch" in err.lower() or "lost" in err.lower())
            stalled = "did not finish" in err
            assert lost or stalled, err
            assert not (remote / "run-summary.json").exists()
        for f in done:
            assert_same(read(local / f), read(remote / f), f)
    finally:
        c.stop()


def store_rows(store: pathlib.Path) -> tuple[dict, dict[str, pa.Table]]:
    """A store's validation report and every table's rows, its files read
    in the manifest's order."""
    m = json.loads((store / "_safetyscope.json").read_text())
    tables = {name: pa.concat_tables([pq.read_table(store / f["path"]) for f in t["files"]])
              for name, t in m["tables"].items()}
    return m["report"], tables


def split_row_groups(sample: pathlib.Path, table: str, rows: int) -> int:
    """Rewrite a generated table with row groups of `rows` rows (the
    generator writes a million per group); the number of groups."""
    path = sample / f"{table}.parquet"
    t = pq.read_table(path)
    pq.write_table(t, path, row_group_size=rows)
    return pq.ParquetFile(path).num_row_groups


def add_flaws(sample: pathlib.Path) -> None:
    """Give a generated sample's incidents two files, with 40 ids of the
    first repeated in the second and 10 rows of an unknown severity."""
    import pyarrow.compute as pc
    t = pq.read_table(sample / "incidents.parquet")
    half = t.num_rows // 2
    first, second = t.slice(0, half), t.slice(half)
    bad = second.slice(0, 10)
    at = bad.schema.get_field_index("severity")
    bad = bad.set_column(at, bad.schema.field(at), pa.array(["volcano"] * 10, type=bad.schema.field(at).type))
    second = pa.concat_tables([bad, second.slice(10), first.slice(100, 40)])
    (sample / "incidents.parquet").unlink()
    (sample / "incidents").mkdir()
    pq.write_table(first, sample / "incidents" / "part-a.parquet")
    pq.write_table(second, sample / "incidents" / "part-b.parquet")
    toml = sample / "dataset.toml"
    toml.write_text(toml.read_text().replace('path = "incidents.parquet"', 'path = "incidents"'))
    assert pc.count_distinct(first["id"]).as_py() == half


def ingest_tasks(path: pathlib.Path, task_rows: int) -> int:
    """The tasks a Parquet source makes: consecutive row groups of at
    least `task_rows` rows (the last may have fewer)."""
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    if len(sizes) < 2 or sum(sizes) <= task_rows:
        return 1
    tasks, rows = 0, 0
    for i, n in enumerate(sizes):
        rows += n
        if rows >= task_rows or i + 1 == len(sizes):
            tasks, rows = tasks + 1, 0
    return tasks


def test_ingest_on_the_cluster_equals_one_process_and_the_runner_reads_no_rows(cli: str, cluster_bin: str, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    """`safetyscope ingest --cluster`: the executors read the sources (a
    large Parquet file split at its row groups into several tasks), validate
    them, write the store's files and find the duplicate ids with a grouped
    plan; the runner reads under 1 % of the sources' bytes (their footers
    and the site plan) and writes the manifest. The report and every
    table's rows, in order, equal the one-process ingest's."""
    sample = tmp_path / "sample"
    subprocess.run([cli, "generate", "--out", str(sample), "--scale", "1", "--sites", "3"], check=True, capture_output=True)
    assert split_row_groups(sample, "positions", 20_000) >= 6
    add_flaws(sample)
    positions_tasks = ingest_tasks(sample / "positions.parquet", 50_000)
    assert positions_tasks >= 3
    subprocess.run([cli, "ingest", str(sample), "--out", str(tmp_path / "store-local")], check=True, capture_output=True)
    before = {j["job_id"] for j in scheduler_jobs(cluster)}
    trace = tmp_path / "runner.strace"
    p = subprocess.run(["strace", "-f", "-y", "-e", "trace=read,pread64", "-o", str(trace),
                        cli, "ingest", str(sample), "--out", str(tmp_path / "store-cluster"),
                        "--cluster", cluster.url, "--task-rows", "50000"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    local_report, local = store_rows(tmp_path / "store-local")
    remote_report, remote = store_rows(tmp_path / "store-cluster")
    assert local_report == remote_report
    incidents = local_report["tables"]["incidents"]
    assert incidents["rows_accepted"] > 1000
    assert incidents["rejected"]["duplicate_id"]["count"] == 40
    assert incidents["rejected"]["unknown_enum"]["count"] == 10
    assert sorted(local) == sorted(remote)
    for name in local:
        assert local[name].equals(remote[name]), name
    # Nothing beside the stores but their lock files.
    assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(".")) == [".store-cluster.lock", ".store-local.lock"]

    size = sum(f.stat().st_size for f in sample.rglob("*") if f.is_file())
    per_file = bytes_read_from(trace, sample)
    runner = sum(min(n, pathlib.Path(f).stat().st_size) for f, n in per_file.items())
    assert runner <= 0.01 * size, (per_file, size)

    jobs = [j for j in scheduler_jobs(cluster) if j["job_id"] not in before]
    assert jobs and all(j["status"] == "Completed" for j in jobs)
    loads = sorted((s for j in jobs for s in j["stages"] if "IngestExec" in s["stage_plan"]), key=lambda s: -len(s["tasks"]))
    # One task per source (the incidents have two), the positions split at
    # their row groups; then one task rewriting the file that holds the
    # later occurrences of the repeated ids.
    tables = len([t for t in local if t != "cells"])
    assert [len(s["tasks"]) for s in loads] == [tables + positions_tasks, 1], loads
    assert all(s["stage_status"] == "Successful" for s in loads)
    # Each ran its own ingest task once: one result row per task (a task
    # handed every partition would run every ingest task and return all
    # their rows).
    assert [s["output_rows"] for s in loads] == [len(s["tasks"]) for s in loads], loads
    # The duplicate ids: the executors scanned every id written.
    ids = [s for j in jobs for s in j["stages"] if "/.ids/" in s["stage_plan"]]
    assert ids and sum(s["input_rows"] for s in ids) > 0


def test_losing_an_executor_during_the_ingest(cli: str, cluster_bin: str, tmp_path: pathlib.Path) -> None:
    """One of two executors is killed (SIGKILL) while they validate the
    sources and write the store. Either the ingest completes (the lost
    tasks run again on the other executor) with the one-process store, or
    it fails with exit code 4; then there is no store at all, nor any
    temporary directory or file beside where it would be. An older store
    at that place is left as it was."""
    c = Cluster(cluster_bin, tmp_path)
    try:
        c.executor("executor-1")
        c.executor("executor-2")
        time.sleep(2)
        sample = tmp_path / "sample"
        subprocess.run([cli, "generate", "--out", str(sample), "--scale", "2", "--sites", "6"], check=True, capture_output=True)
        split_row_groups(sample, "positions", 20_000)
        subprocess.run([cli, "ingest", str(sample), "--out", str(tmp_path / "store-local")], check=True, capture_output=True)
        old = tmp_path / "old"
        subprocess.run([cli, "generate", "--out", str(old), "--scale", "0.05", "--sites", "1"], check=True, capture_output=True)
        store = tmp_path / "store"
        subprocess.run([cli, "ingest", str(old), "--out", str(store)], check=True, capture_output=True)
        old_manifest = (store / "_safetyscope.json").read_text()
        job = subprocess.Popen([cluster_bin, "ingest", str(sample), "--out", str(store), "--cluster", c.url,
                                "--task-rows", "50000", "--timeout-seconds", "120"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        log = tmp_path / "scheduler.log"
        end = time.time() + 120
        while time.time() < end and "Job submitted" not in log.read_text(errors="replace"):
            time.sleep(0.05)
        time.sleep(0.3)
        # The executor dies while the ingest runs.
        assert job.poll() is None
        c.kill("executor-2")
        killed = time.time()
        _, err = job.communicate(timeout=900)
        print("ingest after an executor loss: exit code", job.returncode, round(time.time() - killed, 1), err[-300:])
        beside = sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(".store"))
        assert beside == [".store-local.lock", ".store.lock"], beside
        if job.returncode == 0:
            local_report, local = store_rows(tmp_path / "store-local")
            remote_report, remote = store_rows(store)
            assert local_report == remote_report
            for name in local:
                assert local[name].equals(remote[name]), name
        else:
            assert job.returncode == 4, err
            assert (store / "_safetyscope.json").read_text() == old_manifest
            assert sorted(p.name for p in store.iterdir()) == sorted(
                [*json.loads(old_manifest)["tables"].keys(), "_safetyscope.json"])
    finally:
        c.stop()
