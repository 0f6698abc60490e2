"""Build the segmenter a config names (the backends import :mod:`.segment`, so this lives apart)."""
from __future__ import annotations

from .segment import Mask2FormerConfig, OpenCVConfig, Segmenter


def make_segmenter(config: Mask2FormerConfig | OpenCVConfig, min_area: float | None = None) -> Segmenter:
    """Build (and load) the segmenter a config names. ``min_area`` (the smallest instance the
    caller keeps, a fraction of the frame) sets how small a person the OpenCV backend looks for
    when its config leaves ``min_area`` unset."""
    if config.backend == "opencv":
        if config.min_area is None and min_area is not None:
            config = config.model_copy(update={"min_area": min_area})
        from .opencv import OpenCVSegmenter

        return OpenCVSegmenter(config)
    from .mask2former import Mask2FormerSegmenter

    return Mask2FormerSegmenter(config)
