"""Datasets on an S3-compatible object store (a local moto server): every
command, the store ingest, a job file and the Python package read
`s3://bucket/prefix` as they read the same files on disk, with credentials
and endpoint from the AWS_* environment; failures name the URL and exit 3."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MINE_CSV = ROOT / "examples" / "real" / "mine-accidents" / "msha_accidents_2000-2015_sample.csv"
MINE_MAPPING = ROOT / "examples" / "real" / "mine-accidents.toml"


def run(cli: str, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([cli, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}: {p.stderr}")
    return p


def put_tree(s3, bucket: str, prefix: str, root: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    for f in sorted(root.rglob("*")):
        if f.is_file():
            s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(root).as_posix()}")


@pytest.fixture(scope="module")
def bucket(s3, sample: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """`plain/`: the sample's files; `hive/`: incidents as Hive partitions by
    site with a `_SUCCESS` marker, violations as CSV; `mine/`: the real MSHA
    CSV with its mapping as `dataset.toml`."""
    name = "safety-lake"
    s3.create_bucket(Bucket=name)
    put_tree(s3, name, "plain", sample)
    # Hive layout written by pyarrow, the way a data platform writes it.
    hive = tmp_path_factory.mktemp("hive")
    for f in sample.glob("*.parquet"):
        if f.stem == "incidents":
            continue
        if f.stem == "violations":
            pq.read_table(f).to_pandas().to_csv(hive / "violations.csv", index=False)
            continue
        (hive / f.name).write_bytes(f.read_bytes())
    inc = pq.read_table(sample / "incidents.parquet")
    pq.write_to_dataset(inc, str(hive / "incidents"), partition_cols=["site"])
    (hive / "incidents" / "_SUCCESS").write_text("")
    put_tree(s3, name, "hive", hive)
    # A mapping file whose table path is relative to the mapping's prefix.
    text = re.sub(r'^path = ".*"$', 'path = "msha.csv"', MINE_MAPPING.read_text(), count=1, flags=re.M)
    s3.put_object(Bucket=name, Key="mine/dataset.toml", Body=text.encode())
    s3.upload_file(str(MINE_CSV), name, "mine/msha.csv")
    return name


def counts(report: dict) -> dict[str, tuple[int, int]]:
    return {t: (r["rows_read"], r["rows_accepted"]) for t, r in report["tables"].items()}


def test_every_command_reads_s3_like_local_files(cli, sample, bucket, tmp_path):
    url = f"s3://{bucket}/plain"
    for args in (
        ["risk", "--out", "{}/risk.parquet"],
        ["heatmap", "--out", "{}/heatmap.csv"],
        ["peaks", "--by", "site", "--out", "{}/peaks.parquet"],
        ["kpis", "--scopes", "group,site", "--out", "{}/kpis.parquet"],
        ["targets", "--out", "{}/targets.csv"],
        ["alerts", "--out", "{}/alerts.csv"],
    ):
        outs = []
        for src, name in ((str(sample), "local"), (url, "s3")):
            d = tmp_path / name
            d.mkdir(exist_ok=True)
            a = [x.format(d) for x in args]
            run(cli, a[0], src, *a[1:])
            outs.append(pathlib.Path(a[-1]).read_bytes())
        assert outs[0] == outs[1], args[0]
        assert len(outs[0]) > 200, args[0]
    local = json.loads(run(cli, "validate", str(sample), "--json").stdout)
    remote = json.loads(run(cli, "validate", url, "--json").stdout)
    assert counts(local) == counts(remote)
    assert counts(remote)["incidents"][0] > 1000
    # Reports name the objects they read.
    assert "s3://safety-lake/plain/incidents.parquet" in json.dumps(remote)


def test_hive_partitions_csv_and_markers_on_s3(cli, sample, bucket, tmp_path):
    local = json.loads(run(cli, "validate", str(sample), "--json").stdout)
    remote = json.loads(run(cli, "validate", f"s3://{bucket}/hive", "--json").stdout)
    assert counts(remote) == counts(local)
    # The same heat map: partition values become the site column again.
    run(cli, "heatmap", str(sample), "--out", str(tmp_path / "a.csv"))
    run(cli, "heatmap", f"s3://{bucket}/hive", "--out", str(tmp_path / "b.csv"))
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_mapping_file_on_s3(cli, bucket):
    local = json.loads(run(cli, "validate", str(MINE_MAPPING), "--json").stdout)
    for url in (f"s3://{bucket}/mine", f"s3://{bucket}/mine/dataset.toml"):
        remote = json.loads(run(cli, "validate", url, "--json").stdout)
        assert counts(remote) == counts(local) == {"incidents": (2000, 1976)}
        # The same rejected rows, reported against the object they came from.
        def rejected(report: dict, source: str) -> str:
            text = json.dumps(report["tables"]["incidents"]["rejected"], sort_keys=True)
            assert source in text
            return text.replace(source, "SOURCE")

        assert rejected(remote, f"s3://{bucket}/mine/msha.csv") == rejected(local, str(MINE_CSV))


def test_store_ingest_and_job_from_s3(cli, sample, bucket, tmp_path):
    run(cli, "ingest", f"s3://{bucket}/plain", "--out", str(tmp_path / "store"))
    run(cli, "risk", str(tmp_path / "store"), "--out", str(tmp_path / "a.parquet"))
    run(cli, "risk", str(sample), "--out", str(tmp_path / "b.parquet"))
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    job = tmp_path / "job.toml"
    job.write_text(
        f'data = "s3://{bucket}/plain"\nstore = "store2"\nout = "out"\nas_of = "2025-12-01"\n'
        '[[analysis]]\nname = "risk"\nkind = "risk"\nformats = ["parquet"]\n'
        '[[analysis]]\nname = "kpis"\nkind = "kpis"\nformats = ["csv"]\n'
    )
    run(cli, "run", str(job))
    summary = json.loads((tmp_path / "out" / "run-summary.json").read_text())
    assert summary["data"] == f"s3://{bucket}/plain"
    assert {o["rows"] for o in summary["outputs"]} and all(o["rows"] > 0 for o in summary["outputs"])
    run(cli, "kpis", str(sample), "--as-of", "2025-12-01", "--out", str(tmp_path / "k.csv"))
    assert (tmp_path / "out" / "kpis.csv").read_text() == (tmp_path / "k.csv").read_text()


def test_missing_objects_and_buckets_exit_3_naming_the_url(cli, bucket):
    p = run(cli, "validate", f"s3://{bucket}/nothing-here", check=False)
    assert p.returncode == 3, p.stderr
    assert f"s3://{bucket}/nothing-here" in p.stderr
    p = run(cli, "validate", "s3://no-such-bucket/plain", check=False)
    assert p.returncode == 3, p.stderr
    assert "s3://no-such-bucket/plain" in p.stderr


def test_unreachable_endpoint_exits_3(cli, bucket, s3_env):
    env = {**os.environ, **s3_env, "AWS_ENDPOINT": "http://127.0.0.1:9", "AWS_TIMEOUT": "2s", "AWS_CONNECT_TIMEOUT": "1s"}
    p = run(cli, "validate", f"s3://{bucket}/plain", check=False, env=env)
    assert p.returncode == 3, p.stderr
    assert f"s3://{bucket}/plain" in p.stderr


def test_python_opens_s3(sample, bucket):
    import safetyscope

    local = safetyscope.Dataset.open(str(sample))
    remote = safetyscope.Dataset.open(f"s3://{bucket}/plain")
    a = local.risk_map().to_pandas()
    b = remote.risk_map().to_pandas()
    assert a.equals(b)
    assert len(a) > 10
    with pytest.raises(safetyscope.NotFoundError):
        safetyscope.Dataset.open(f"s3://{bucket}/nothing-here")
