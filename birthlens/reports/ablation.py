"""Read an ablation or patching JSON defensively: show what is there, skip what is not.

    view = ablation_view(json.load(open("ablate.json")), n_layers=30, n_heads=9)
    view["rows"]       # [(metric, baseline, ablated, delta), ...]
    view["matrices"]   # [{"title", "matrix", "top"}]: per-head effect tables found in it
    head_effect(raw, (18, 6))   # the effect of ablating one head, if the JSON says

The JSON comes from `birthlens ablate ... --json` (and `birthlens patch`), which other
code writes; this reader only relies on a few names (``baseline``, ``ablated``,
``delta``, a per-head effect matrix somewhere) and never fails on a field it does
not know, so a newer JSON still renders.
"""

from __future__ import annotations

import math
from numbers import Number

# Keys that, if they hold a (layers x heads) table, are per-head effects.
MATRIX_HINTS = ("sweep", "effects", "effect", "matrix", "delta", "patching", "restored", "values")
SCALAR_KEYS = ("baseline", "ablated", "delta")
DESCRIPTION_KEYS = ("metric", "method", "mode", "kind", "ablation", "corruption", "n_sequences", "seed")


def _is_number(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _as_float(value) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(float(value)) else None


def is_matrix(value) -> bool:
    """A non-empty list of equal-length lists of numbers (or None)."""
    if not isinstance(value, list) or not value or not all(isinstance(row, list) and row for row in value):
        return False
    width = len(value[0])
    return all(len(row) == width and all(v is None or _is_number(v) for v in row) for row in value)


def find_matrices(data, path: str = "", depth: int = 0) -> list[tuple[str, list]]:
    """(dotted key path, matrix) for every per-head table in ``data``, outermost first."""
    found = []
    if isinstance(data, dict) and depth <= 3:
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if is_matrix(value):
                found.append((where, value))
            elif isinstance(value, (dict, list)):
                found.extend(find_matrices(value, where, depth + 1))
    elif isinstance(data, list) and depth <= 3 and not is_matrix(data):
        for i, value in enumerate(data[:8]):
            if isinstance(value, dict):
                found.extend(find_matrices(value, f"{path}[{i}]", depth + 1))
    return found


def top_cells(matrix, n: int = 5) -> list[tuple[int, int, float]]:
    """The n cells with the largest absolute value, as (layer, head, value)."""
    cells = [(i, j, float(v)) for i, row in enumerate(matrix) for j, v in enumerate(row) if _as_float(v) is not None]
    return sorted(cells, key=lambda c: -abs(c[2]))[:n]


def _scalar_rows(raw: dict) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, baseline, ablated, delta) rows: one when the values are numbers, one per
    metric when they are {metric: value} dicts."""
    values = {key: raw.get(key) for key in SCALAR_KEYS}
    metric = str(raw.get("metric") or "metric")
    if any(isinstance(v, dict) for v in values.values()):
        names = []
        for v in values.values():
            if isinstance(v, dict):
                names += [k for k in v if k not in names and _is_number(v[k])]
        return [(name, *(_as_float(values[k].get(name)) if isinstance(values[k], dict) else None for k in SCALAR_KEYS)) for name in names]
    if any(_is_number(v) for v in values.values()):
        baseline, ablated, delta = (_as_float(values[k]) for k in SCALAR_KEYS)
        if delta is None and baseline is not None and ablated is not None:
            delta = ablated - baseline
        return [(metric, baseline, ablated, delta)]
    return []


def _heads(raw: dict) -> list[list[int]]:
    heads = raw.get("heads") or raw.get("ablated_heads") or []
    if isinstance(heads, list):
        return [list(h) for h in heads if isinstance(h, (list, tuple)) and len(h) == 2]
    return []


def ablation_view(raw, n_layers: int | None = None, n_heads: int | None = None) -> dict | None:
    """What the report shows of an ablation/patching JSON, or None if it holds nothing to show."""
    if not isinstance(raw, dict):
        return None
    shape_ok = lambda m: n_layers is None or (len(m) == n_layers and len(m[0]) == n_heads)  # noqa: E731
    matrices = [
        {"title": path.replace("_", " "), "matrix": matrix, "top": top_cells(matrix)}
        for path, matrix in find_matrices(raw)
        if shape_ok(matrix) and (len(matrix) > 1 or len(matrix[0]) > 1 or any(h in path for h in MATRIX_HINTS))
    ]
    view = {
        "description": [(key, raw[key]) for key in DESCRIPTION_KEYS if isinstance(raw.get(key), (str, int, float)) and not isinstance(raw.get(key), bool)],
        "heads": _heads(raw),
        "rows": _scalar_rows(raw),
        "matrices": matrices,
    }
    return view if view["rows"] or view["matrices"] else None


def head_effect(raw, head) -> float | None:
    """The change in the metric when ``head`` alone is ablated: ``delta`` if that is what was
    ablated, else the head's cell in the first per-head matrix."""
    if not isinstance(raw, dict) or head is None:
        return None
    layer, index = int(head[0]), int(head[1])
    heads = _heads(raw)
    if heads == [[layer, index]]:
        rows = _scalar_rows(raw)
        if rows and rows[0][3] is not None:
            return rows[0][3]
    for _, matrix in find_matrices(raw):
        if layer < len(matrix) and index < len(matrix[layer]):
            return _as_float(matrix[layer][index])
    return None
