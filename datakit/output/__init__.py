"""The output format of a corpus job, owned here and nowhere else.

``layout`` names the files of an output root, ``settings`` is the small object the
writer needs (never the whole pipeline spec); the schema, the one public reader, the
writer (run by the workers) and the resume state live beside them.
"""
