import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datakit import ingest
from datakit.stages.caption import Caption, CaptionConfig


def _touch(p, text="x"):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_folders_globs_lists_and_manifests(tmp_path):
    a = _touch(tmp_path / "in" / "a.mp4")
    b = _touch(tmp_path / "in" / "sub" / "b.MOV")
    _touch(tmp_path / "in" / "a.txt", "caption of a")
    _touch(tmp_path / "in" / "notes.json", "{}")
    folder = [r.meta["source_uri"] for r in ingest.list_sources([str(tmp_path / "in")])]
    assert folder == [str(a), str(b)]
    globbed = [r.meta["source_uri"] for r in ingest.list_sources([str(tmp_path / "in" / "*.mp4")])]
    assert globbed == [str(a)]
    lst = _touch(tmp_path / "list.txt", "# comment\nin/a.mp4\n" + str(b) + "\n")
    assert [r.meta["source_uri"] for r in ingest.list_sources([str(lst)])] == [str(a), str(b)]
    pq.write_table(pa.table({"path": ["in/a.mp4", str(b)], "caption": ["cap a", None]}), tmp_path / "m.parquet")
    recs = ingest.list_sources([str(tmp_path / "m.parquet")])
    assert [r.meta.get("manifest_caption") for r in recs] == ["cap a", None]
    _touch(tmp_path / "m.csv", f"uri,text\n{a},csv caption\n")
    assert ingest.list_sources([str(tmp_path / "m.csv")])[0].meta["manifest_caption"] == "csv caption"
    # the same source listed twice is one record; --limit cuts the list
    assert len(ingest.list_sources([str(tmp_path / "in"), str(a)])) == 2
    assert len(ingest.list_sources([str(tmp_path / "in")], limit=1)) == 1


def test_input_errors_are_clear(tmp_path):
    with pytest.raises(ingest.InputError, match="does not exist"):
        ingest.list_sources([str(tmp_path / "nope")])
    with pytest.raises(ingest.InputError, match="matches no video"):
        ingest.list_sources([str(tmp_path / "*.mp4")])
    pq.write_table(pa.table({"name": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(ingest.InputError, match="no URI column"):
        ingest.list_sources([str(tmp_path / "bad.parquet")])


def test_caption_sources_in_priority_order(tmp_path):
    v = _touch(tmp_path / "v.mp4")
    w = _touch(tmp_path / "w.mp4")
    _touch(tmp_path / "v.json", '{"text": "from json"}')
    _touch(tmp_path / "w.txt", "  from txt \n")
    recs = ingest.list_sources([str(v), str(w), str(_touch(tmp_path / "z.mp4"))])
    recs[0].meta["manifest_caption"] = "from manifest"
    out = Caption(CaptionConfig()).process_batch(recs)
    assert [(r.meta["caption"], r.meta["caption_source"]) for r in out] == [
        ("from manifest", "manifest"), ("from txt", "sidecar"), ("", "default")]
    recs = ingest.list_sources([str(tmp_path / "z.mp4")])
    out = Caption(CaptionConfig(required=True)).process_batch(recs)
    assert out[0].reject.reason == "no_caption"


def test_a_long_list_is_sorted_and_made_distinct_in_bounded_runs(tmp_path):
    """Entries beyond one in-memory run spill to sorted runs that are merged: the same sources
    in the same order as sorting everything at once, each once, a caption kept over none."""
    import random

    rng = random.Random(0)
    names = [f"/v/{rng.randrange(3000):05d}.mp4" for _ in range(5000)]
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    pq.write_table(pa.table({"uri": ["/v/00007.mp4", "/v/99999.mp4"], "caption": ["seven", None]}),
                   tmp_path / "m.parquet")
    inputs = [str(tmp_path / "list.txt"), str(tmp_path / "m.parquet")]
    spilled = list(ingest.iter_sources(inputs, run_rows=700))
    whole = list(ingest.iter_sources(inputs))
    assert spilled == whole
    assert [u for u, _ in spilled] == sorted(set(names) | {"/v/00007.mp4", "/v/99999.mp4"})
    assert dict(spilled)["/v/00007.mp4"] == "seven"


def test_plan_files_leave_out_done_sources_and_read_back(tmp_path):
    import pyarrow.compute as pc

    from datakit.records import source_id

    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"/v/{i:04d}.mp4\n" for i in range(250)))
    done = pa.array([source_id(f"/v/{i:04d}.mp4") for i in range(0, 250, 5)])
    seen = []
    plan = ingest.plan([str(lst)], str(tmp_path / "plan"), limit=200, rows_per_file=64,
                       is_done=lambda ids: pc.is_in(ids, value_set=done), on_listed=seen.append)
    assert (plan.listed, plan.skipped, plan.todo) == (200, 40, 160) and sum(seen) == 200
    assert len(plan.files) == 4
    recs = [r for f in plan.files for r in ingest.read_plan(f)]
    assert [r.meta["source_uri"] for r in recs] == [f"/v/{i:04d}.mp4" for i in range(200) if i % 5]
    assert all(r.key == r.meta["source_id"] == source_id(r.meta["source_uri"]) for r in recs)
