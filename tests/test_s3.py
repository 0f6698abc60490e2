"""Inputs and outputs on s3:// through pyarrow.fs, against an S3-compatible server on loopback."""
import os
import subprocess
import sys

import pyarrow.fs as pafs
import pytest

from conftest import FAST, REPO
from datakit import fsio
from datakit.output import reader
from datakit.verify import verify
from outputs import docs, rejects

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(sample_dir):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fs = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", allow_bucket_creation=True)
    fs.create_dir("corpus")
    for name in ("carphone_pristine.mp4", "bikes.mp4"):
        with fs.open_output_stream(f"corpus/raw/{name}") as f:
            f.write((sample_dir / name).read_bytes())
    with fs.open_output_stream("corpus/raw/carphone_pristine.txt") as f:
        f.write(b"a man in a car")
    with fs.open_output_stream("corpus/raw/broken.mp4") as f:
        f.write(b"not a video")
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


def test_pipeline_reads_and_writes_object_storage(s3):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    cmd = [sys.executable, "-m", "datakit.cli", "run", "pipelines/demo.yaml", "--input", "s3://corpus/raw",
           "--output", "s3://corpus/out", "-q", "--set", "split.max_clips_per_source=2",
           *[a for o in FAST for a in ("--set", o)]]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    names = {u[len("s3://corpus/out/"):] for u in fsio.list_files("s3://corpus/out")}
    assert {"meta/config.json", "meta/summary.json"} <= names
    assert not any(n.startswith("meta/plan") for n in names)          # the run's plan is removed
    rows = docs("s3://corpus/out")
    assert {f"shards/{r['shard']}.tar" for r in rows} <= names
    assert {f"manifests/{r['shard']}.parquet" for r in rows} <= names
    assert rows and all(x["source_uri"].startswith("s3://corpus/raw/") for x in rows)
    rej = rejects("s3://corpus/out")
    assert len(rows) + sum(1 for x in rej if x["stage"] == "filter") == 4
    assert [x["reason"] for x in rej if x["stage"] != "filter"] == ["unreadable"]
    # a member read by range from the bucket, checked against its sha256
    out = reader.open_output("s3://corpus/out")
    assert out.read_members(next(out.manifest_rows()), ["txt"])["txt"].decode() == rows[0]["caption"]
    assert {x["caption"] for x in rows if x["source_uri"].endswith("carphone_pristine.mp4")} == {"a man in a car"}
    rep = verify("s3://corpus/out")
    assert rep.ok, rep.problems
    # a rerun against the bucket resumes: nothing new is written
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "wrote 0 samples" in r.stdout
