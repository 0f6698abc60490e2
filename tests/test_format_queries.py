"""The one-liners of docs/FORMAT.md, run against a real small output (the demo pipeline on the
bundled clips), each checked against what datakit's own reader gives."""
import math
import re

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from datakit import summary
from datakit.output import reader

pytestmark = pytest.mark.slow
DOC = (REPO / "docs" / "FORMAT.md").read_text()


@pytest.fixture(scope="module")
def out(demo_fast_run):
    o = reader.open_output(str(demo_fast_run))
    assert len(o.batches()) >= 2                    # more than one manifest: the globs must join them
    return demo_fast_run, o


def _doc_line(pattern: str) -> str:
    """The one-liner of FORMAT.md matching ``pattern`` (so the test runs what the doc says)."""
    found = [line for line in DOC.splitlines() if re.search(pattern, line)]
    assert found, f"FORMAT.md has no line matching {pattern!r}"
    return found[0]


def _code(line: str, root) -> str:
    return line.split("#")[0].split("--")[0].strip().rstrip(";").replace("OUT", str(root))


def _kept_scores(o, name):
    return [r["scores"][name] for r in o.manifest_rows(["scores"]) if r["scores"][name] is not None]


def _sql(query: str) -> list[tuple]:
    return duckdb.connect().execute(query).fetchall()


def test_duckdb(out):
    root, o = out
    metric = "sharpness"
    got = _sql(_code(_doc_line(r"SELECT avg\(scores\."), root))[0][0]
    want = _kept_scores(o, metric)
    assert want and math.isclose(got, float(np.mean(want)), rel_tol=1e-12)
    reasons = dict(_sql(_code(_doc_line(r"SELECT reason, count"), root)))
    assert reasons == summary.build(o)["rejects_by_reason"]
    members = _sql(_code(_doc_line(r"unnest\(members\)"), root))
    assert len(members) == sum(len(r["members"]) for r in o.manifest_rows(["members"]))
    # a plain glob of the manifests counts samples only (format 1 counted rejects too)
    assert _sql(f"SELECT count(*) FROM '{root}/manifests/*.parquet'")[0][0] == o.count_samples()


def test_pandas(out):
    root, o = out
    df = eval(_code(_doc_line(r"pd\.read_parquet"), root), {"pd": pd})
    assert sorted(df["key"]) == sorted(r["key"] for r in o.manifest_rows(["key"]))
    assert isinstance(df["scores"].iloc[0], dict)                  # a struct, not JSON text
    assert math.isclose(df["scores"].map(lambda s: s["sharpness"]).mean(),
                        float(np.mean(_kept_scores(o, "sharpness"))), rel_tol=1e-12)


def test_pyarrow(out):
    root, o = out
    col = eval(_code(_doc_line(r"pq\.read_table"), root), {"pq": pq})
    assert col.to_pylist() == [r["scores"]["sharpness"] for r in o.manifest_rows(["scores"])]
    rejects = eval(_code(_doc_line(r"pyarrow\.dataset\.dataset"), root), {"pyarrow": __import__("pyarrow")})
    assert sorted(rejects.column("key").to_pylist()) == sorted(r["key"] for r in o.reject_rows(["key"]))
    assert rejects.schema.field("scores").type == pads.dataset(f"{root}/manifests").schema.field("scores").type


def test_ray_data(out, ray_session):
    import ray.data

    root, o = out
    ds = eval(_code(_doc_line(r"ray\.data\.read_parquet"), root), {"ray": ray})
    rows = ds.take_all()
    assert sorted(r["key"] for r in rows) == sorted(r["key"] for r in o.manifest_rows(["key"]))
    assert math.isclose(ds.sum("num_frames"), sum(r["num_frames"] for r in o.manifest_rows(["num_frames"])))


def test_range_read_as_documented(out):
    root, o = out
    row = next(o.manifest_rows())
    m = next(m for m in row["members"] if m["name"] == "json")
    with open(f"{root}/shards/{row['shard']}.tar", "rb") as f:
        f.seek(m["offset"])
        assert f.read(m["size"]).decode() == row["json"]
