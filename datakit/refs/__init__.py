"""Visual references for the ``mi2v`` and ``edit`` corpora (SPEC §3.6, paper A.2)."""
