"""A small, safe expression language for ``inspect --where``.

``scores.musiq > 40 and source.height >= 720``, ``caption_source == "sidecar"``,
``task in ["t2v", "mi2v"]``, ``not lr.lossless``. Names are sample json fields;
``a.b`` and ``a["b"]`` look into nested objects; a missing field is ``None`` and any
comparison with ``None`` is false. Nothing else (calls, imports, dunder access) parses.
"""
from __future__ import annotations

import ast
import operator
from typing import Any, Callable

_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b}


class WhereError(ValueError):
    pass


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, (list, tuple)) and isinstance(key, int) and -len(obj) <= key < len(obj):
        return obj[key]
    return None


def _eval(node: ast.AST, row: dict) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, row)
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, row) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        v = _eval(node.operand, row)
        if isinstance(node.op, ast.Not):
            return not v
        return -v if isinstance(v, (int, float)) else None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, row)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, row)
            if left is None or right is None:
                if not isinstance(op, (ast.Eq, ast.NotEq)):
                    return False
            try:
                if not _CMP[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return row.get(node.id)
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise WhereError(f"field {node.attr!r} is not allowed")
        return _get(_eval(node.value, row), node.attr)
    if isinstance(node, ast.Subscript):
        return _get(_eval(node.value, row), _eval(node.slice, row))
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, row) for e in node.elts]
    raise WhereError(f"not allowed in --where: {ast.unparse(node) if hasattr(ast, 'unparse') else type(node).__name__}")


def compile_where(expr: str) -> Callable[[dict], bool]:
    """Parse once; the result maps a sample json to True/False."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise WhereError(f"--where {expr!r}: {e.msg}") from None
    _eval(tree, {})  # reject disallowed syntax now, not per row
    return lambda row: bool(_eval(tree, row))
