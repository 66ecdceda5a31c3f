"""Read ablation and patching JSON defensively: show what is there, skip what is not.

    views = intervention_views(json.load(open("ablate.json")), n_layers=30, n_heads=9)
    views[0]["kind"], views[0]["rows"], views[0]["matrix"]
    head_effect(raw, (18, 6))    # (change of the metric, metric) when that head is ablated

The JSON comes from `birthlens ablate/patch ... --json` (``birthlens.probes.ablation`` and
``patching`` results, possibly wrapped with the model's name); this reader relies only on
their few stable names and finds results at any depth, so a wrapper or a newer field
does not break a report:
- an ablation: ``baseline`` with ``ablated``/``delta`` (numbers: one set of components;
  tables: a sweep over a site, with ``top``);
- a patching: ``clean``, ``corrupted`` with ``patched``/``normalised`` (likewise).
"""

from __future__ import annotations

import math
from numbers import Number

MAX_DEPTH = 4


def _is_number(value) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _as_float(value) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(float(value)) else None


def is_table(value) -> bool:
    """A non-empty list of numbers/None, or of equal-length such lists."""
    if not isinstance(value, list) or not value:
        return False
    if all(v is None or _is_number(v) for v in value):
        return True
    width = len(value[0]) if isinstance(value[0], list) else -1
    return width > 0 and all(isinstance(row, list) and len(row) == width and all(v is None or _is_number(v) for v in row) for row in value)


def as_rows(table) -> list[list]:
    """A 1-D table (one value per layer) as a one-column matrix."""
    return table if isinstance(table[0], list) else [[v] for v in table]


def result_kind(d) -> str | None:
    """"ablation", "patching" or None for a dict that is neither."""
    if not isinstance(d, dict):
        return None
    if "baseline" in d and ("ablated" in d or "delta" in d):
        return "ablation"
    if "clean" in d and "corrupted" in d and ("patched" in d or "normalised" in d):
        return "patching"
    return None


def find_results(data, depth: int = 0) -> list[dict]:
    """Every ablation/patching result in ``data``, outermost first."""
    if result_kind(data):
        return [data]
    found = []
    if depth < MAX_DEPTH and isinstance(data, dict):
        for value in data.values():
            found += find_results(value, depth + 1)
    elif depth < MAX_DEPTH and isinstance(data, list) and not is_table(data):
        for value in data:
            found += find_results(value, depth + 1)
    return found


def parse_head(component) -> tuple[int, int] | None:
    """"17.4", [17, 4] or (17, 4) -> (17, 4); anything else (attn.3, mlp.2) -> None."""
    if isinstance(component, str):
        parts = component.split(".")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
        return None
    if isinstance(component, (list, tuple)) and len(component) == 2 and all(isinstance(x, int) for x in component):
        return int(component[0]), int(component[1])
    return None


def _components(d: dict) -> list[str]:
    raw = d.get("components") or d.get("heads") or []
    return [f"L{h[0]}H{h[1]}" if (h := parse_head(c)) else str(c) for c in raw] if isinstance(raw, list) else []


def _top(d: dict, key: str) -> list[tuple[str, float | None]]:
    out = []
    for item in d.get("top") or []:
        if isinstance(item, dict) and "component" in item:
            head = parse_head(item["component"])
            name = f"L{head[0]}H{head[1]}" if head else str(item["component"])
            out.append((name, _as_float(item.get(key))))
    return out


def _view(d: dict, n_layers: int | None) -> dict:
    kind = result_kind(d)
    metric = str(d.get("metric") or "metric")
    view = {
        "kind": kind,
        "metric": metric,
        "higher_is_better": d.get("higher_is_better"),
        "method": d.get("method") or d.get("direction"),
        "site": d.get("site"),
        "components": _components(d),
        "note": d.get("note") if isinstance(d.get("note"), str) else None,
        "rows": [],
        "matrix": None,
        "top": [],
    }
    if kind == "ablation":
        main, top_key = d.get("delta"), "delta"
        if _is_number(d.get("ablated")) or _is_number(main):
            baseline, ablated, delta = (_as_float(d.get(k)) for k in ("baseline", "ablated", "delta"))
            if delta is None and baseline is not None and ablated is not None:
                delta = ablated - baseline
            view["columns"] = ("baseline", "ablated", "change")
            view["rows"] = [(metric, baseline, ablated, delta)]
        view["label"] = f"change in {metric}"
    else:
        main, top_key = d.get("normalised"), "normalised"
        if _is_number(d.get("patched")) or _is_number(main):
            view["columns"] = ("clean", "corrupted", "patched", "restored (0..1)")
            view["rows"] = [(metric, *(_as_float(d.get(k)) for k in ("clean", "corrupted", "patched", "normalised")))]
        view["label"] = "restored fraction (0 = corrupted, 1 = clean)"
    if is_table(main):
        matrix = as_rows(main)
        per_head = d.get("site") in (None, "head") and not d.get("per_position")
        view["xlabel"] = "head" if per_head else ("position" if d.get("per_position") else str(d.get("site")))
        if n_layers is None or len(matrix) == n_layers:
            view["matrix"] = matrix
        view["top"] = _top(d, top_key) or [(f"L{i}H{j}" if per_head else f"{i}.{j}", v) for i, j, v in top_cells(matrix)]
        if _is_number(d.get("baseline")):
            view["baseline"] = float(d["baseline"])
    return view


def top_cells(matrix, n: int = 5) -> list[tuple[int, int, float]]:
    """The n cells with the largest absolute value, as (row, column, value)."""
    cells = [(i, j, float(v)) for i, row in enumerate(matrix) for j, v in enumerate(row) if _as_float(v) is not None]
    return sorted(cells, key=lambda c: -abs(c[2]))[:n]


def intervention_views(raw, n_layers: int | None = None, n_heads: int | None = None) -> list[dict]:
    """One view per ablation/patching result in ``raw`` that has something to show."""
    views = [_view(d, n_layers) for d in find_results(raw)]
    return [v for v in views if v["rows"] or v["matrix"] is not None or v["top"]]


def head_effect(raw, head) -> tuple[float, str] | None:
    """(change of the metric, metric name) when ``head`` is ablated alone: from an ablation
    of exactly that head, else from its cell in a head sweep."""
    if head is None:
        return None
    head = (int(head[0]), int(head[1]))
    ablations = [d for d in find_results(raw) if result_kind(d) == "ablation"]
    for d in ablations:
        components = [parse_head(c) for c in d.get("components") or d.get("heads") or []]
        delta = _as_float(d.get("delta"))
        if components == [head] and delta is not None:
            return delta, str(d.get("metric") or "metric")
    for d in ablations:
        table = d.get("delta")
        if is_table(table) and isinstance(table[0], list) and d.get("site") in (None, "head"):
            if head[0] < len(table) and head[1] < len(table[head[0]]):
                value = _as_float(table[head[0]][head[1]])
                if value is not None:
                    return value, str(d.get("metric") or "metric")
    return None
