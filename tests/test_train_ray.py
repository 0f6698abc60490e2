"""The trainer starts Ray through datakit.rayinit alone: nothing it imports, even lazily, is the corpus runner."""
from test_imports import MODULES, graph


def _reachable(start: str, g: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]  # packages
        todo += g.get(m, ())
    return seen


def test_train_never_imports_the_corpus_runner():
    g = graph()
    train = [m for m in MODULES if m.startswith("datakit.train")] + ["datakit.commands.training"]
    assert len(train) > 5
    for m in train:
        assert "datakit.runner" not in _reachable(m, g), m
    assert "datakit.rayinit" in _reachable("datakit.train.trainer", g)
    # the walk sees lazy imports: `run` reaches the runner from inside a function
    assert "datakit.runner" in _reachable("datakit.commands.corpus", g)
