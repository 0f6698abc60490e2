"""The inspection report (``datakit inspect``): a self-contained static site of an output root, or of what
a filter profile keeps of a clip index (``inspect_index``)."""
from .site import ProfileReport, ReportOptions, build_site, inspect_index
from .where import WhereError, compile_where

__all__ = ["ProfileReport", "ReportOptions", "build_site", "inspect_index", "WhereError", "compile_where"]
