"""Video I/O on PyAV: probe, decode a span onto a fixed-fps timeline, encode.

Frames are ``uint8`` RGB arrays shaped ``(T, H, W, 3)``. Clip spans are expressed on
a *target timeline*: frame ``i`` of a source sampled at ``fps`` is the source frame
shown at time ``start_time + i / fps``. That one rule handles variable frame rate,
frame-rate conversion and sources whose timestamps do not start at zero.
"""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import av
import numpy as np

from . import fsio



class MediaError(Exception):
    """A video could not be read or written; ``reason`` is a short reject code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoInfo:
    width: int            # displayed width (rotation applied)
    height: int           # displayed height (rotation applied)
    coded_width: int
    coded_height: int
    rotation: int         # degrees counter-clockwise to apply for display (0/90/180/270)
    codec: str
    pix_fmt: str
    bit_depth: int
    fps: float            # average frame rate
    vfr: bool             # frame durations vary by more than 10 %
    num_frames: int       # counted from the packets, not trusted from the header
    duration_s: float
    start_time: float     # timestamp of the first frame, seconds
    container: str
    has_audio: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _open(uri: str):
    try:
        return av.open(fsio.open_input(uri), mode="r")
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError("unreadable", f"cannot open container: {e}") from e


def _bit_depth(pix_fmt: str) -> int:
    try:
        fmt = av.VideoFormat(pix_fmt)
        return max(c.bits for c in fmt.components)
    except Exception:  # unknown or hardware formats
        return 8


def probe(uri: str) -> VideoInfo:
    """Read a video's properties; counts frames from packets (headers lie)."""
    container = _open(uri)
    try:
        if not container.streams.video:
            raise MediaError("no_video_stream", "the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None or stream.codec_context.name is None:
            raise MediaError("unsupported_codec", "no decoder for the video stream")
        has_audio = bool(container.streams.audio)
        tb = stream.time_base or Fraction(1, 90000)
        pts: list[int] = []
        n_packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                n_packets += 1
                if packet.pts is not None:
                    pts.append(packet.pts)
        except av.FFmpegError as e:
            if n_packets == 0:
                raise MediaError("unreadable", f"cannot demux: {e}") from e
        if n_packets == 0:
            raise MediaError("no_frames", "the video stream has no frames")
        pts.sort()
        start = float(pts[0] * tb) if pts else 0.0
        avg = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(avg) if avg else 0.0
        vfr = False
        if len(pts) >= 3:
            d = np.diff(np.asarray(pts, dtype=np.float64)) * float(tb)
            d = d[d > 0]
            if d.size:
                if fps <= 0:
                    fps = 1.0 / float(np.median(d))
                vfr = bool(np.max(np.abs(d - np.median(d))) > 0.1 * np.median(d))
        if fps <= 0 or not math.isfinite(fps):
            fps = 25.0
        if len(pts) >= 2:
            duration = float((pts[-1] - pts[0]) * tb) + 1.0 / fps
        else:
            duration = n_packets / fps
        rotation = _first_frame_rotation(uri)
        cw, ch = ctx.width, ctx.height
        if not cw or not ch:
            raise MediaError("unreadable", "the video stream has no frame size")
        w, h = (ch, cw) if rotation in (90, 270) else (cw, ch)
        pix_fmt = ctx.pix_fmt or "unknown"
        return VideoInfo(
            width=w, height=h, coded_width=cw, coded_height=ch, rotation=rotation,
            codec=ctx.name, pix_fmt=pix_fmt, bit_depth=_bit_depth(pix_fmt), fps=fps, vfr=vfr,
            num_frames=n_packets, duration_s=duration, start_time=start,
            container=container.format.name, has_audio=has_audio,
        )
    finally:
        container.close()


def _frame_rotation(frame) -> int:
    """Display rotation of a decoded frame, counter-clockwise degrees in {0, 90, 180, 270}."""
    r = frame.rotation or 0
    return int(round(r / 90.0)) % 4 * 90


def _first_frame_rotation(uri: str) -> int:
    """Decode the first frame: proves the stream decodes and reads its display matrix."""
    container = _open(uri)
    try:
        for frame in container.decode(video=0):
            return _frame_rotation(frame)
    except av.FFmpegError as e:
        raise MediaError("undecodable", f"first frame does not decode: {e}") from e
    finally:
        container.close()
    raise MediaError("undecodable", "no frame decodes")


def _to_rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    """RGB array of a frame, resized to the displayed ``size`` and rotated for display."""
    rot = _frame_rotation(frame)
    w, h = size if size else (None, None)
    if size and rot in (90, 270):
        w, h = h, w
    img = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    if rot:
        img = np.ascontiguousarray(np.rot90(img, k=rot // 90))
    return img


def read_span(
    uri: str,
    start_time: float,
    num_frames: int,
    fps: float,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode ``num_frames`` frames at ``fps`` starting at ``start_time`` seconds.

    Target frame ``i`` is the source frame on screen at ``start_time + i / fps``.
    ``size`` is the displayed (width, height) to resize to (area filter, in FFmpeg).
    Seeks to the keyframe before the span, so the cost follows the span, not the file.
    Raises ``MediaError('decode_error', ...)`` if the source ends early or is corrupt.
    """
    container = _open(uri)
    out: list[np.ndarray] = []
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, 90000)
        eps = 0.25 / fps
        times = [start_time + i / fps for i in range(num_frames)]
        if start_time > 1.0:
            container.seek(int((start_time - 1.0) / tb), stream=stream, backward=True)
        prev = prev_img = None
        prev_t = prev_dur = 0.0
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * tb) if frame.pts is not None else prev_t + 1.0 / fps
                # every target time before this frame is covered by the previous frame
                while len(out) < num_frames and times[len(out)] + eps < t:
                    if prev is None:  # the source starts after the span does: hold its first frame
                        prev = frame
                    if prev_img is None:
                        prev_img = _to_rgb(prev, size)
                    out.append(prev_img)
                if len(out) >= num_frames:
                    break
                prev, prev_img, prev_t = frame, None, t
                prev_dur = float(frame.duration * tb) if frame.duration else 1.0 / fps
        except av.FFmpegError as e:
            raise MediaError("decode_error", f"after {len(out)} of {num_frames} frames: {e}") from e
        # the last frame stays on screen for its own duration
        while prev is not None and len(out) < num_frames and times[len(out)] < prev_t + prev_dur + eps:
            if prev_img is None:
                prev_img = _to_rgb(prev, size)
            out.append(prev_img)
    finally:
        container.close()
    if len(out) < num_frames:
        raise MediaError("decode_error", f"source ended after {len(out)} of {num_frames} frames")
    return np.stack(out)


#: Encoder threads of lossless members (``lr.mp4``, ``mask.mp4``): x264 cuts each frame into one
#: slice per thread, so the bytes depend on the count; FFmpeg's default follows the core count.
LOSSLESS_THREADS = 4


def encode(
    frames: np.ndarray,
    fps: float,
    codec: str = "libx264",
    crf: int | None = 18,
    preset: str = "medium",
    lossless: bool = False,
    bitrate: int | None = None,
    pix_fmt: str | None = None,
    threads: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames as one MP4 stream in memory.

    ``lossless=True`` stores RGB exactly (libx264rgb, qp 0): decoding gives back the
    input bytes, so a stored LR adds no artifacts of its own. ``threads`` fixes the
    encoder's thread count (the default lets FFmpeg pick from the core count; lossless
    encodes default to ``LOSSLESS_THREADS``, so their bytes do not depend on the machine);
    ``options`` adds encoder options (e.g. ``{"x264-params": "mbtree=0"}``).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise ValueError("cannot encode an empty clip")
    buf = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(buf, mode="w", format="mp4") as out:
        if lossless:
            threads = LOSSLESS_THREADS if threads is None else threads
            stream = out.add_stream("libx264rgb", rate=rate)
            stream.pix_fmt = "rgb24"
            stream.options = {"qp": "0", "preset": preset}
        else:
            if (h % 2 or w % 2) and (pix_fmt or "yuv420p") == "yuv420p":
                raise ValueError(f"yuv420p needs even sizes, got {w}x{h}")
            stream = out.add_stream(codec, rate=rate)
            stream.pix_fmt = pix_fmt or "yuv420p"
            opts = {}
            if codec in ("libx264", "h264", "libx265", "hevc"):
                opts["preset"] = preset
                if crf is not None and bitrate is None:
                    opts["crf"] = str(crf)
            opts.update(options or {})
            stream.options = opts
            if bitrate is not None:
                stream.bit_rate = int(bitrate)
        stream.width, stream.height = w, h
        if threads is not None:
            stream.codec_context.thread_count = threads
        for i in range(t):
            vf = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            zero_padding(vf)              # the conversion's filters read past the last column
            if stream.pix_fmt != "rgb24":
                vf = vf.reformat(format=stream.pix_fmt)
            zero_padding(vf)
            vf.pts = i
            vf.time_base = Fraction(1) / rate
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def zero_padding(frame) -> None:
    """Zero the bytes past each row's pixels in ``frame``'s planes. FFmpeg leaves them
    uninitialised, and both the RGB -> YUV conversion and x264 read some of them: without
    this, the same frames do not always encode to the same bytes."""
    for p in frame.planes:
        rows = p.buffer_size // p.line_size if p.line_size else 0
        used = p.buffer_size // rows if rows else 0
        width = used and p.line_size
        row_bytes = p.width * (3 if frame.format.name in ("rgb24", "bgr24") else 1)
        if rows and row_bytes < width:
            np.frombuffer(memoryview(p), np.uint8).reshape(rows, p.line_size)[:, row_bytes:] = 0


def decode(data: bytes) -> np.ndarray:
    """Decode every frame of an in-memory video to ``(T, H, W, 3)`` uint8 RGB."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.FFmpegError as e:
        raise MediaError("decode_error", str(e)) from e
    if not frames:
        raise MediaError("decode_error", "no frames")
    return np.stack(frames)


def stream_info(data: bytes) -> dict:
    """Codec, size, frame count and rate of an in-memory video (for manifests and checks)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        s = container.streams.video[0]
        n = sum(1 for p in container.demux(s) if p.size)
        return {"codec": s.codec_context.name, "width": s.codec_context.width,
                "height": s.codec_context.height, "frames": n, "fps": float(s.average_rate or 0)}
