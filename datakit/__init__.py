"""datakit: UniMMVSR corpus building and training."""
__version__ = "0.1.0"
