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
