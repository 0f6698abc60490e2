"""``datakit reproduce``: re-make one finished sample from its json and compare it with what is stored.

The sample json records everything that made the sample's members: the source span, the
HR size and encoder settings, the reference frame, every SDEdit setting and seed, every
drawn degradation parameter. :func:`reproduce` re-runs the pipeline's member-making stages
(``extract``, ``id_refs``, ``edit_refs``, ``sdedit``, ``synthetic``: each stage's own
``replay``, the code that made the sample, fed the recorded parameters instead of new draws)
on one record built from the json, and reports per member the recorded sha256 (from the
manifest, or of the given bytes), the sha256 of the bytes as stored now, the rebuilt
sha256, and whether they match. Members that differ are decoded and compared: the largest
and mean absolute difference in 8-bit levels. The json fields the stages write (``hr``,
``lr``, ``sdedit``, ``degradations``, ``refs``, ``ref``, ``mask``) are compared as well.

Bit for bit is required of everything except what a stage says cannot promise it: SDEdit
run on a GPU (or in bf16, or batched with other clips), degradations whose per-frame maths
ran on a torch device, and samples made before the encoders' settings were fixed. Those
members are ``differs`` (with the difference), not ``mismatch``, unless ``strict``.

The inputs of the rebuild are not rebuilt: the source video, the caption (``txt``) and the
json itself; the scores and the filter's verdict are not recomputed.

I/O stays at the edges: :func:`reproduce` works on a json dict, the output's config and the
stored members; :func:`find_sample` (an output root and a key) and :func:`load_sample` (a
sample json or a tar, with its members) read them.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
from dataclasses import asdict, dataclass, field

import numpy as np

from . import fsio, media
from .records import Record
from .stages import STAGES

#: json fields the writer adds (not the stages)
WRITER_FIELDS = ("format_version", "key", "task", "config_hash", "pipeline", "datakit_version")
#: json fields the member-making stages write: removed before the replay, compared after it
MADE_FIELDS = ("hr", "lr", "sdedit", "degradations", "refs", "ref", "mask")
#: members that are the rebuild's inputs, not its results
INPUT_MEMBERS = ("json", "txt")
#: member statuses that make a report fail
FAILING = ("mismatch", "not_rebuilt", "extra")


class ReproduceError(ValueError):
    """The sample cannot be rebuilt (unknown key, missing config, source gone...): one line that says why."""


@dataclass
class MemberCheck:
    name: str
    status: str                  # match | mismatch | differs | input | not_rebuilt | extra
    recorded: str | None         # sha256 the manifest records (or of the given bytes, without a manifest)
    stored: str | None           # sha256 of the member's bytes as read now
    rebuilt: str | None          # sha256 of the re-made member
    max_abs: float | None = None     # decoded rebuilt vs stored: largest |difference| in 8-bit levels
    mean_abs: float | None = None    # ... and its mean over every pixel and channel
    note: str = ""


@dataclass
class FieldCheck:
    name: str                    # a json field, or degradations[STAGE]
    status: str                  # match | mismatch | differs
    note: str = ""


@dataclass
class Report:
    key: str
    pipeline: str | None
    config_hash: str | None
    stages: list[str]
    members: list[MemberCheck] = field(default_factory=list)
    fields: list[FieldCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ok(self, strict: bool = False) -> bool:
        bad = FAILING + (("differs",) if strict else ())
        return not any(m.status in bad for m in self.members) and not any(f.status in bad for f in self.fields)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok()}


@dataclass
class Sample:
    """What a rebuild reads: the json, the stored members, the manifest's checksums and the output's config."""

    doc: dict
    members: dict[str, bytes]
    recorded_sha: dict[str, str]     # from the manifest; empty without one
    config: dict                     # the output's config.json: {"config_hash", "spec", ...}
    where: str = ""                  # where it was read from, for messages
    unreadable: dict[str, str] = field(default_factory=dict)   # member -> why its stored bytes were refused


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the rebuild

def reproduce(doc: dict, config: dict, members: dict[str, bytes], recorded_sha: dict[str, str] | None = None,
              device: str | None = None, source: str | None = None,
              unreadable: dict[str, str] | None = None) -> Report:
    """Re-make a sample's members from its json ``doc`` and compare them with ``members``.

    ``config``: the output's config (``{"config_hash": ..., "spec": {...}}``); ``recorded_sha``:
    the manifest's sha256 per member (default: the given members' own); ``device``: where SDEdit
    and the degradations' per-frame maths run (default: the config's); ``source``: the source
    video's URI when it moved since the run (default: the json's ``source_uri``); ``unreadable``:
    members the reader refused (their stored bytes do not match the manifest), with the reason.
    """
    from . import spec as specmod

    key = doc.get("key")
    if not key:
        raise ReproduceError("the sample json has no `key`: is it a datakit sample json?")
    try:
        spec = specmod.parse(copy.deepcopy(config["spec"]), source="the output's config")
    except (KeyError, TypeError):
        raise ReproduceError("the config has no `spec` (give an output's config.json)") from None
    except specmod.SpecError as e:
        raise ReproduceError(f"the output's config no longer validates: {str(e).splitlines()[0]}") from None
    want = config.get("config_hash") or spec.config_hash()
    if doc.get("config_hash") and doc["config_hash"] != want:
        raise ReproduceError(f"sample {key} was made with config {doc['config_hash']}, the config given is {want}: "
                             "give the config.json of the output it came from")
    configs = [c for c in spec.stages if STAGES[c.stage].reproducible]
    report = Report(key=key, pipeline=doc.get("pipeline"), config_hash=doc.get("config_hash"),
                    stages=[c.stage for c in configs])
    rec = Record(key=key, meta={k: copy.deepcopy(v) for k, v in doc.items()
                                if k not in WRITER_FIELDS and k not in MADE_FIELDS})
    if source:
        rec.meta["source_uri"] = source
    if "txt" in members:
        rec.meta["caption"] = members["txt"].decode("utf-8")
    elif "sdedit" in report.stages:
        raise ReproduceError(f"sample {key}: SDEdit needs the caption, and no `txt` member was given")
    why: dict[str, str] = {}
    wrote: dict[str, str] = {}          # json field -> the stage that wrote it last
    inexact: set[str] = set()           # stages whose results are not promised bit for bit
    for cfg in configs:
        if device is not None and "device" in type(cfg).model_fields:
            cfg = cfg.model_copy(update={"device": device})
        cls = STAGES[cfg.stage]
        problems = cls.preflight(cfg)
        if problems:
            raise ReproduceError(f"{cfg.stage}: " + "; ".join(problems))
        before = copy.deepcopy(rec.meta)
        try:
            stage = cls(cfg)
            stage.setup()
            said = stage.replay(rec, doc)
        except media.MediaError as e:
            raise ReproduceError(f"{cfg.stage}: cannot re-read {rec.meta.get('source_uri')}: {e.detail} "
                                 "(moved? give its new place with --source)") from None
        except (ValueError, RuntimeError, KeyError) as e:
            raise ReproduceError(f"{cfg.stage}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        for name, reason in said.items():
            if name == "json":
                report.notes.append(f"{cfg.stage}: {reason}")
                continue
            why[name] = f"{why[name]}; {reason}" if name in why else reason
            inexact.add(cfg.stage)
        for k in MADE_FIELDS:
            if k in rec.meta and rec.meta.get(k) != before.get(k):
                wrote[k] = cfg.stage
    if "hr.mp4" in why:                 # members made from an HR that may differ may differ too
        for name in rec.media:
            why.setdefault(name, "made from hr.mp4, which may differ")
    report.members = _compare_members(members, rec.media, recorded_sha or {}, why, unreadable or {})
    report.fields = _compare_fields(doc, rec.meta, wrote, inexact)
    return report


def _decoded(name: str, data: bytes) -> np.ndarray | None:
    try:
        if name.endswith(".mp4"):
            return media.decode(data)
        if name.endswith((".png", ".jpg", ".jpeg", ".webp")):
            from PIL import Image

            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception:  # noqa: BLE001 - a member that does not decode has no difference to report
        return None
    return None


def difference(name: str, a: bytes, b: bytes) -> tuple[float | None, float | None, str]:
    """(max, mean) absolute difference of two members' decoded pixels, in 8-bit levels, and a note."""
    x, y = _decoded(name, a), _decoded(name, b)
    if x is None or y is None:
        return None, None, "" if x is None and y is None and not name.endswith(".mp4") else "does not decode"
    if x.shape != y.shape:
        return None, None, f"shapes differ: stored {tuple(x.shape)}, rebuilt {tuple(y.shape)}"
    d = np.abs(x.astype(np.int16) - y.astype(np.int16))
    return float(d.max()), round(float(d.mean()), 6), ""


def _compare_members(stored: dict[str, bytes], rebuilt: dict[str, bytes], recorded: dict[str, str],
                     why: dict[str, str], unreadable: dict[str, str]) -> list[MemberCheck]:
    out = []
    names = list(dict.fromkeys([*stored, *recorded, *rebuilt]))
    for name in sorted(names, key=lambda n: (n in INPUT_MEMBERS, n)):
        s = stored.get(name)
        s_sha = sha256(s) if s is not None else None
        r_sha = recorded.get(name, s_sha)
        b = rebuilt.get(name)
        b_sha = sha256(b) if b is not None else None
        m = MemberCheck(name, "", r_sha, s_sha, b_sha)
        if s is None and name in recorded:
            m.status, m.note = "mismatch", unreadable.get(name, "listed in the manifest, absent from the shard")
        elif s_sha != r_sha:
            m.status, m.note = "mismatch", "the stored bytes do not match the manifest's sha256"
        if name in INPUT_MEMBERS:
            m.status = m.status or "input"
            m.note = m.note or "an input of the rebuild, not rebuilt"
            out.append(m)
            continue
        if b is None:
            m.status = m.status or "not_rebuilt"
            m.note = m.note or "no reproducible stage of the pipeline makes this member"
        elif r_sha is None:
            m.status, m.note = "extra", "rebuilt, but the sample has no such member"
        elif not m.status and b_sha == r_sha:
            m.status = "match"
        elif m.status and b_sha == r_sha:
            m.note += "; the rebuilt bytes match the manifest (the sample can be restored from its json)"
        else:
            if not m.status:
                m.status = "differs" if name in why else "mismatch"
                m.note = why.get(name, "")
            if s is not None:
                m.max_abs, m.mean_abs, note = difference(name, s, b)
                m.note = "; ".join(x for x in (m.note, note) if x)
        out.append(m)
    return out


def _first_difference(a, b, path: str = "") -> str:
    """The first place two json values differ, as ``path: recorded -> rebuilt``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k, ...) != b.get(k, ...):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    text = f"{path}: {json.dumps(a)[:80]} -> {json.dumps(b)[:80]}"
    return text


def _compare_fields(doc: dict, meta: dict, wrote: dict[str, str], inexact: set[str]) -> list[FieldCheck]:
    """The json fields the stages wrote against the recorded ones; a field of a stage whose result
    is not promised exact (``inexact``) that differs is ``differs``, else ``mismatch``."""
    made = json.loads(json.dumps(meta))                  # as the writer stores it (tuples -> lists)
    out = []

    def check(name: str, a, b, stage: str | None) -> None:
        if a == b:
            out.append(FieldCheck(name, "match"))
        else:
            out.append(FieldCheck(name, "differs" if stage in inexact else "mismatch", _first_difference(a, b)))

    for k in MADE_FIELDS:
        if k != "degradations" and (k in doc or k in made):
            check(k, doc.get(k), made.get(k), wrote.get(k))
    rec_deg = {d.get("stage"): d for d in doc.get("degradations") or []}
    new_deg = {d.get("stage"): d for d in made.get("degradations") or []}
    for stage in dict.fromkeys([*rec_deg, *new_deg]):
        check(f"degradations[{stage}]", rec_deg.get(stage), new_deg.get(stage), stage)
    return out


# ---------------------------------------------------------------- reading a sample

def _members_of(tar_bytes: bytes, key: str) -> dict[str, bytes]:
    found = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        for info in tf:
            if info.isfile() and info.name.split("/")[-1].startswith(key + "."):
                found[info.name.split("/")[-1][len(key) + 1:]] = tf.extractfile(info).read()
    return found


def _config_near(root: str) -> dict | None:
    """The config of the output root ``root``, if it is one."""
    from .output import layout

    uri = layout.config_uri(root)
    if not fsio.exists(uri):
        return None
    try:
        return json.loads(fsio.read_text(uri))
    except ValueError as e:
        raise ReproduceError(f"{uri} is not valid JSON: {e}") from None


def find_sample(output: str, key: str) -> Sample:
    """The sample ``key`` of the output root ``output``: its json, members, manifest checksums and config,
    read through the format's one reader (``datakit.output.reader``). A member whose stored bytes no
    longer match the manifest is left out of ``members`` and named in ``unreadable`` with the reason."""
    from .output import reader
    from .output.errors import CorruptFile, OutputError

    try:
        out = reader.open_output(output)
        row = next((r for r in out.manifest_rows(["key", "shard", "members", "json"]) if r["key"] == key), None)
        if row is None:
            rejected = next((r for r in out.reject_rows(["key", "stage", "reason"]) if r["key"] == key), None)
            if rejected:
                raise ReproduceError(f"{key} was rejected at stage {rejected['stage']} ({rejected['reason']}): "
                                     "a rejected clip has no members to rebuild")
            raise ReproduceError(f"no sample {key} in {output} ({out.count_samples()} samples): the keys are in "
                                 "the manifests' `key` column (`datakit inspect` lists them)")
        doc = reader.sample_doc(row)
        tar = out.tar_uri(row["shard"])
        members, unreadable = {}, {}
        for m in row["members"]:
            try:
                members.update(reader.read_ranges(tar, key, [m]))
            except CorruptFile as e:
                unreadable[m["name"]] = e.reason
    except OutputError as e:
        raise ReproduceError(str(e)) from None
    return Sample(doc=doc, members=members, recorded_sha={m["name"]: m["sha256"] for m in row["members"]},
                  config=out.config, where=tar, unreadable=unreadable)


def load_config(path: str) -> dict:
    """An output's config.json, or a pipeline YAML (its resolved spec and hash)."""
    from . import spec as specmod

    if not fsio.exists(path):
        raise ReproduceError(f"config {path} not found")
    if path.endswith((".yaml", ".yml")):
        try:
            spec = specmod.load(path)
        except specmod.SpecError as e:
            raise ReproduceError(str(e).splitlines()[0]) from None
        return {"config_hash": spec.config_hash(), "spec": spec.model_dump(mode="json")}
    try:
        config = json.loads(fsio.read_text(path))
    except ValueError as e:
        raise ReproduceError(f"{path} is not JSON: {e}") from None
    if "spec" not in config:
        raise ReproduceError(f"{path} has no `spec`: give an output's config.json or a pipeline YAML")
    return config


def load_sample(target: str, key: str | None = None, members_from: str | None = None,
                config: str | None = None) -> Sample:
    """A sample from a json file (members in ``members_from``: a folder or a tar; default: the
    json's folder) or from a tar with ``key``. The config is ``config`` or that of the nearest
    output root above (``meta/config.json``)."""
    if not fsio.exists(target):
        raise ReproduceError(f"{target} not found")
    if target.endswith(".tar"):
        if not key:
            raise ReproduceError(f"{target} is a shard: give the sample's KEY after it")
        members = _members_of(fsio.read_bytes(target), key)
        if "json" not in members:
            raise ReproduceError(f"no sample {key} in {target}")
        doc = json.loads(members["json"])
    else:
        try:
            doc = json.loads(fsio.read_bytes(target))
        except ValueError as e:
            raise ReproduceError(f"{target} is not a sample json: {e}") from None
        if not isinstance(doc, dict) or "key" not in doc:
            raise ReproduceError(f"{target} is not a sample json (no `key`)")
        key = doc["key"]
        folder = target.rsplit("/", 1)[0] if "/" in target else "."
        members = _members_from(members_from or folder, key)
        members["json"] = fsio.read_bytes(target)
    if config:
        cfg = load_config(config)
    else:
        cfg = None
        here = fsio.normalize(target).rsplit("/", 1)[0]
        for _ in range(4):
            cfg = _config_near(here)
            if cfg is not None or "/" not in here.rstrip("/"):
                break
            here = here.rsplit("/", 1)[0]
        if cfg is None:
            raise ReproduceError(f"no config.json found above {target}: pass --config OUTPUT/config.json "
                                 "(or the pipeline YAML)")
    return Sample(doc=doc, members=members, recorded_sha={}, config=cfg, where=target)


def _members_from(where: str, key: str) -> dict[str, bytes]:
    """Members from a tar, or a folder of ``KEY.NAME`` files (as a shard unpacks) or plain ``NAME`` files."""
    if where.endswith(".tar"):
        if not fsio.exists(where):
            raise ReproduceError(f"{where} not found")
        return _members_of(fsio.read_bytes(where), key)
    if not fsio.is_dir(where):
        raise ReproduceError(f"{where} is neither a folder nor a tar of members")
    found: dict[str, bytes] = {}
    files = fsio.list_files(where, recursive=False)
    for uri in files:
        base = uri.rsplit("/", 1)[-1]
        if base.startswith(key + "."):
            found[base[len(key) + 1:]] = fsio.read_bytes(uri)
    if not found:
        for uri in files:
            base = uri.rsplit("/", 1)[-1]
            if base in ("hr.mp4", "lr.mp4", "ref.mp4", "mask.mp4", "txt") or \
                    (base.startswith("ref_") and base.endswith(".png")):
                found[base] = fsio.read_bytes(uri)
    found.pop("json", None)
    return found
