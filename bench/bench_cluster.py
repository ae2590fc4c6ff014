"""The nightly job's analyses on a Ballista cluster of 1 and of 2 executors,
each executor pinned to its own core, against one process.

    python bench/bench_cluster.py --bin CLI --cluster-bin CLUSTER --scale 240 --out /tmp/bench-cluster

The data are those of bench/bench_job.py (the event tables with the plan,
exposure, activities, targets and thresholds), validated once into a store
with `safetyscope ingest`; the job (bench/job.toml without its `store` key)
reads the store, so the runs time the analyses, not the ingest, which
runs in the job runner either way. For each run: the wall time, the job
runner's CPU time (user + system, from `/usr/bin/time`) and its share of
the wall time, the executors' task count and rows read from the
scheduler's REST API, and whether every output file equals the
one-process run's byte for byte.

With `--ingest`, the same for `ingest` (one process) against `ingest
--cluster` (the executors validate the sources and write the store): the
report and every table's rows, in order, compared with the one-process
store's.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request

TABLES = "incidents,hazards,violations,exposure,activities,targets,thresholds"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    end = time.time() + 60
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def timed(cmd: list[str], cwd: pathlib.Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a command."""
    p = subprocess.run(["/usr/bin/time", "-f", "TIME %e %U %S", *cmd], cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-3000:])
    wall, user, system = map(float, re.findall(r"TIME ([\d.]+) ([\d.]+) ([\d.]+)", p.stderr)[-1])
    return wall, user + system


def files(d: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != "run-summary.json"}


def cluster_run(a: argparse.Namespace, d: pathlib.Path, executors: int, ingest: bool = False) -> dict:
    port = free_port()
    logs = d / f"cluster-{executors}"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    procs = [subprocess.Popen(
        [a.cluster_bin, "scheduler", "--bind-host", "127.0.0.1", "--external-host", "127.0.0.1", "--bind-port", str(port)],
        stdout=open(logs / "scheduler.log", "wb"), stderr=subprocess.STDOUT)]
    try:
        wait_port(port)
        cores = os.sched_getaffinity(0)
        for i in range(executors):
            flight, grpc = free_port(), free_port()
            work = logs / f"executor-{i + 1}"
            work.mkdir()
            core = sorted(cores)[i % len(cores)]
            procs.append(subprocess.Popen(
                ["taskset", "-c", str(core), a.cluster_bin, "executor", "--bind-host", "127.0.0.1",
                 "--external-host", "127.0.0.1", "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port),
                 "--bind-port", str(flight), "--bind-grpc-port", str(grpc), "--work-dir", str(work),
                 "--vcores", "1", "--executor-heartbeat-interval-seconds", "1"],
                stdout=open(logs / f"executor-{i + 1}.log", "wb"), stderr=subprocess.STDOUT))
            wait_port(flight)
        time.sleep(2)
        if ingest:
            out = d / f"store-cluster-{executors}"
            shutil.rmtree(out, ignore_errors=True)
            wall, cpu = timed([a.cluster_bin, "ingest", "data", "--out", out.name, "--cluster", f"df://127.0.0.1:{port}"], d)
        else:
            out = d / f"out-cluster-{executors}"
            shutil.rmtree(out, ignore_errors=True)
            (d / f"cluster-{executors}.toml").write_text(job_text(f"out-cluster-{executors}"))
            wall, cpu = timed([a.cluster_bin, "run", f"cluster-{executors}.toml", "--cluster", f"df://127.0.0.1:{port}"], d)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs", timeout=30) as r:
            jobs = json.load(r)
        tasks = rows = 0
        for j in jobs:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/job/{j['job_id']}/stages", timeout=30) as r:
                for s in json.load(r)["stages"]:
                    tasks += len(s["tasks"])
                    if "DataSourceExec" in s["stage_plan"] or "IngestExec" in s["stage_plan"]:
                        rows += int(s["input_rows"])
        return {"executors": executors, "wall_s": round(wall, 2), "runner_cpu_s": round(cpu, 2),
                "runner_share": round(cpu / wall, 3), "jobs": len(jobs), "tasks": tasks, "rows_scanned_on_executors": rows,
                "out": out}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


JOB = pathlib.Path(__file__).with_name("job.toml").read_text()


def job_text(out: str) -> str:
    lines = [ln for ln in JOB.splitlines() if not ln.startswith(("store =", "data =", "out ="))]
    return "\n".join(['data = "store"', f'out = "{out}"', *lines]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--cluster-bin", required=True)
    ap.add_argument("--scale", type=float, default=240)
    ap.add_argument("--out", default="/tmp/safetyscope-bench-cluster")
    ap.add_argument("--ingest", action="store_true",
                    help="time `ingest` (one process, then `ingest --cluster`) instead of the job")
    a = ap.parse_args()
    a.bin, a.cluster_bin = (str(pathlib.Path(x).resolve()) for x in (a.bin, a.cluster_bin))
    d = pathlib.Path(a.out) / f"scale-{a.scale:g}"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "data" / "incidents.parquet").exists():
        subprocess.run([a.bin, "generate", "--out", str(d / "data"), "--scale", str(a.scale), "--only", TABLES], check=True)
    if a.ingest:
        bench_ingest(a, d)
        return
    if not (d / "store" / "_safetyscope.json").exists():
        subprocess.run([a.bin, "ingest", str(d / "data"), "--out", str(d / "store")], check=True, capture_output=True)
    (d / "local.toml").write_text(job_text("out-local"))
    shutil.rmtree(d / "out-local", ignore_errors=True)
    wall, cpu = timed([a.bin, "run", "local.toml"], d)
    local = files(d / "out-local")
    print(json.dumps({"one_process_wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "outputs": len(local)}), flush=True)
    for n in (1, 2):
        r = cluster_run(a, d, n)
        remote = files(r.pop("out"))
        r["equal_to_one_process"] = remote == local
        r["outputs"] = len(remote)
        print(json.dumps(r), flush=True)


def store_content(store: pathlib.Path) -> tuple[dict, dict]:
    """A store's report and every table's rows in the manifest's order."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    m = json.loads((store / "_safetyscope.json").read_text())
    return m["report"], {n: pa.concat_tables([pq.read_table(store / f["path"]) for f in t["files"]])
                         for n, t in m["tables"].items()}


def bench_ingest(a: argparse.Namespace, d: pathlib.Path) -> None:
    """The ingest in one process, then with 1 and 2 executors: wall time,
    the runner's CPU, and whether the report and every table's rows equal
    the one-process store's."""
    shutil.rmtree(d / "store-local", ignore_errors=True)
    wall, cpu = timed([a.bin, "ingest", "data", "--out", "store-local"], d)
    print(json.dumps({"one_process_wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}), flush=True)
    report, tables = store_content(d / "store-local")
    for n in (1, 2):
        r = cluster_run(a, d, n, ingest=True)
        out = r.pop("out")
        rep, tabs = store_content(out)
        r["equal_to_one_process"] = rep == report and all(tables[k].equals(tabs[k]) for k in tables) and sorted(tabs) == sorted(tables)
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
