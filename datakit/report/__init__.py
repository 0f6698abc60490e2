"""The inspection report (``datakit inspect``): a self-contained static site of an output root."""
from .site import ReportOptions, build_site
from .where import WhereError, compile_where

__all__ = ["ReportOptions", "build_site", "WhereError", "compile_where"]
