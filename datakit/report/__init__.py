"""The inspection report (``datakit inspect``)."""
from .site import ReportOptions, build_site, thresholds
from .where import WhereError, compile_where

__all__ = ["ReportOptions", "build_site", "thresholds", "WhereError", "compile_where"]
