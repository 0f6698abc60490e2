"""Import hygiene of datakit/: no import loops (lazy imports inside functions count too) and no
private name (``_x``) of one module used by another."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "datakit"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES.get(mod, Path()).name == "__init__.py"


def _base(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    pkg = mod if _is_package(mod) else mod.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        pkg = pkg.rsplit(".", 1)[0]
    return f"{pkg}.{node.module}" if node.module else pkg


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (they never run)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    return skip


def imports(mod: str) -> list[tuple[str, list[str], int]]:
    """(imported datakit module, names taken from it, line) for every import statement of ``mod``."""
    tree = ast.parse(MODULES[mod].read_text())
    skip = _type_checking_only(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name in MODULES]
        elif isinstance(node, ast.ImportFrom):
            base = _base(mod, node)
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in MODULES:          # `from pkg import submodule`
                    out.append((sub, [], node.lineno))
                elif base in MODULES:
                    out.append((base, [a.name], node.lineno))
    return out


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t != m} for m in MODULES}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses() -> list[str]:
    """``from x import _name`` and ``x._name`` where x is another datakit module."""
    out = []
    for mod, path in MODULES.items():
        aliases = {}
        for target, names, line in imports(mod):
            out += [f"{path.relative_to(ROOT)}:{line}: imports {target}.{n}" for n in names
                    if _private(n) and target != mod]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({(a.asname or a.name): a.name for a in node.names if a.name in MODULES})
            elif isinstance(node, ast.ImportFrom):
                base = _base(mod, node)
                aliases.update({(a.asname or a.name): f"{base}.{a.name}" for a in node.names
                                if f"{base}.{a.name}" in MODULES})
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                chain = ast.unparse(node.value)
                head, _, rest = chain.partition(".")
                target = aliases.get(head)
                full = f"{target}.{rest}" if target and rest else target
                if full in MODULES and full != mod:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {full}.{node.attr}")
    return out


def test_the_checks_find_what_they_look_for():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert "datakit.output.reader" in MODULES and _is_package("datakit.output")
    assert ("datakit.output.layout", [], 16) in [(t, n, ln) for t, n, ln in imports("datakit.output.reader")
                                                 if t == "datakit.output.layout"] or any(
        t == "datakit.output.layout" for t, _, _ in imports("datakit.output.reader"))


def test_no_import_loops_in_datakit():
    loops = cycles(graph())
    assert not loops, "import loops: " + "; ".join(" <-> ".join(c) for c in loops)


def test_no_private_names_across_modules():
    found = private_uses()
    assert not found, "\n".join(found)
