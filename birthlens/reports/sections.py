"""The report's sections: one builder per section, each with its own template partial.

    for section in build_sections(data):      # only the sections that have data
        section.key, section.title, section.context

A builder takes the ``ReportData`` and returns the context its partial
(``templates/section_<key>.j2``) renders, or None when the data for it is absent.
Adding a section is adding one builder to ``SECTIONS`` and one partial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from birthlens.reports import figures
from birthlens.reports.ablation import head_effect, intervention_views
from birthlens.reports.birth import LABELS as BIRTH_LABELS
from birthlens.reports.birth import PAPER_ORDER, Birth
from birthlens.reports.entries import ModelEntry, head_name
from birthlens.reports.glance import glance

SCORE_NAMES = ("prev_token", "induction", "duplicate_token")
SCORE_TITLES = {"prev_token": "previous-token", "induction": "induction", "duplicate_token": "duplicate-token"}
N_TOP = 5


@dataclass
class ReportData:
    """Everything one report shows. ``compare_only`` models appear in the comparison
    table only (the toy at early steps, next to its final checkpoint in ``models``)."""

    title: str = "birthlens report"
    models: list[ModelEntry] = field(default_factory=list)
    runs: list[Birth] = field(default_factory=list)
    compare_only: list[ModelEntry] = field(default_factory=list)
    claims: dict | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    key: str
    title: str
    context: dict


# ---- summary -----------------------------------------------------------------


def _measured(entry: ModelEntry) -> list[str]:
    probe = entry.probe
    settings = probe.get("settings") or {}
    loss = probe.get("induction_loss") or {}
    out = []
    if probe.get("scores"):
        n, length = loss.get("n_sequences", settings.get("batch_size")), loss.get("length", settings.get("length"))
        bos = "[BOS] " if loss.get("bos", settings.get("bos")) else ""
        out.append(f"attention scores and induction loss on {n} × {bos}A A, |A| = {length} random tokens")
    if probe.get("memory_recall"):
        out.append("memory recall (OV, QK, positional, feed-forward)")
    if probe.get("composition"):
        out.append("Q/K/V composition between heads")
    if probe.get("task"):
        task = probe["task"]
        out.append(f"the bigram-trigger task on {task.get('n_sequences', '?')} sequences ({task.get('n_icl_targets', '?')} in-context targets)")
    if entry.ablation:
        out.append("head ablation")
    return out


def summary(data: ReportData) -> dict | None:
    cards = []
    for entry in data.models:
        info = entry.info
        prev, ind = entry.top_head("prev_token"), entry.top_head("induction")
        loss = entry.probe.get("induction_loss") or {}
        facts = [("shape", f"{entry.n_layers} layers × {entry.n_heads} heads")]
        for key, label in (("d_model", "width"), ("d_vocab", "vocabulary"), ("n_ctx", "context"), ("positional", "positions")):
            if info.get(key) is not None:
                facts.append((label, info[key]))
        if info.get("n_params"):
            facts.append(("parameters", f"{info['n_params'] / 1e6:.2f} M" if info["n_params"] >= 1e5 else f"{info['n_params']:,}"))
        headline = []
        if prev:
            headline.append(f"strongest previous-token head {head_name(prev)} ({prev[2]:.2f})")
        if ind:
            headline.append(f"strongest induction head {head_name(ind)} ({ind[2]:.2f})")
        if loss.get("first_half") is not None and loss.get("second_half") is not None:
            headline.append(f"loss on a repeated sequence falls from {loss['first_half']:.2f} to {loss['second_half']:.2f} nats")
        task = entry.probe.get("task")
        if task and task.get("icl_accuracy") is not None:
            headline.append(f"in-context accuracy on the trigger task {task['icl_accuracy']:.2f}")
        cards.append({"name": entry.name, "kind": info.get("kind", "model"), "source": entry.source,
                      "facts": facts, "headline": headline, "measured": _measured(entry)})  # fmt: skip
    runs = []
    for birth in data.runs:
        config = birth.config
        final = birth.metrics[-1] if birth.metrics else {}
        runs.append({
            "name": birth.name, "preset": config.get("preset"), "steps": config.get("steps"),
            "checkpoints": len(birth.checkpoints), "final": final,
            "task": config.get("task", {}), "model": config.get("model", {}),
        })  # fmt: skip
    if not cards and not runs:
        return None
    # At a glance: the five lines the demo prints, when there is something to set side by side.
    lines = glance(data) if data.runs or len(data.models) > 1 else []
    return {"cards": cards, "runs": runs, "notes": data.notes, "glance": lines}


# ---- comparison across models ---------------------------------------------------


def _recall(entry: ModelEntry, name: str) -> float | None:
    return ((entry.probe.get("memory_recall") or {}).get(name) or {}).get("value")


def comparison(data: ReportData) -> dict | None:
    entries = data.compare_only + data.models
    if len(entries) < 2:
        return None
    columns = [entry.name for entry in entries]
    rows = []

    def row(label, cells, note=""):
        if any(c is not None for c in cells):
            rows.append({"label": label, "cells": cells, "note": note})

    tops = {name: [e.top_head(name) for e in entries] for name in ("prev_token", "induction")}
    row("strongest previous-token head", [head_name(t) if t else None for t in tops["prev_token"]])
    row("  its previous-token score", [t[2] if t else None for t in tops["prev_token"]])
    row("strongest induction head", [head_name(t) if t else None for t in tops["induction"]])
    row("  its induction score", [t[2] if t else None for t in tops["induction"]])
    losses = [e.probe.get("induction_loss") or {} for e in entries]
    row("induction loss, first copy (nats)", [loss.get("first_half") for loss in losses])
    row("induction loss, second copy (nats)", [loss.get("second_half") for loss in losses])
    row("OV recall of the induction head (I)", [_recall(e, "ov") for e in entries], "W_O² in the toy")
    row("QK recall between the pair (P → I)", [_recall(e, "qk") for e in entries], "W_K² in the toy")
    pairs = [(e.probe.get("memory_recall") or {}) for e in entries]
    row("pair read (P → I)", [f"{head_name(m.get('prev_head'))} → {head_name(m.get('induction_head'))}" if m.get("induction_head") else None for m in pairs])
    for role, label in (("induction_head", "ablating I: change in metric"), ("prev_head", "ablating P: change in metric")):
        effects = []
        for e in entries:
            head = (e.probe.get("memory_recall") or {}).get(role)
            effect = head_effect(e.ablation, head) if e.ablation and head else None
            effects.append(f"{effect[0]:+.3f} {effect[1]}" if effect else None)
        row(label, effects)
    tasks = [e.probe.get("task") or {} for e in entries]
    row("in-context accuracy (trigger task)", [t.get("icl_accuracy") for t in tasks])
    row("  previous-token attention probe of P", [t.get("prev_token_probe") for t in tasks], "on the trigger task")
    row("  induction attention probe of I", [t.get("induction_probe") for t in tasks], "on the trigger task")
    return {"columns": columns, "rows": rows}


# ---- the paper's claims, as measured (issue 7's claims.json) ---------------------

VERDICT_CLASSES = {"holds": "ok", "holds with caveat": "caveat", "does not hold": "bad", "not measured": "na"}


def claims(data: ReportData) -> dict | None:
    rows = (data.claims or {}).get("claims") if isinstance(data.claims, dict) else None
    if not rows:
        return None
    out = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        verdict = str(row.get("verdict", "not measured"))
        out.append({"id": row.get("id", ""), "claim": row.get("claim", ""), "verdict": verdict,
                    "css": VERDICT_CLASSES.get(verdict, "na"), "measured": row.get("measured", ""),
                    "n_seeds": row.get("n_seeds"), "note": row.get("note", ""), "scale": row.get("scale", "")})  # fmt: skip
    meta = {key: data.claims.get(key) for key in ("scale", "seeds", "updated") if data.claims.get(key) is not None}
    return {"rows": out, "meta": meta} if out else None


# ---- birth over training ------------------------------------------------------------


def _final_recall(run: Birth, name: str) -> dict:
    """One memory probe's result on the run's last probed checkpoint ({} if not there)."""
    if not run.checkpoints:
        return {}
    probe = run.probes.get(run.checkpoints[-1]["step"]) or {}
    return (probe.get("memory_recall") or {}).get(name) or {}


def birth(data: ReportData) -> dict | None:
    items = []
    for run in data.runs:
        series, crossings, finals = run.series(), run.crossings(), run.finals()
        labels = dict(BIRTH_LABELS)
        p, i = head_name(run.prev_head), head_name(run.induction_head)
        labels.update({"ov": f"W_O² output memory (OV recall of {i})", "qk": f"W_K² key memory (QK recall {p}→{i})",
                       "positional": f"W_K¹ positional memory (of {p})",
                       "prev_token_probe": f"previous-token attention of {p}", "induction_probe": f"induction attention of {i}"})  # fmt: skip
        table = sorted(
            ({"key": key, "label": labels.get(key, key), "step": crossings.get(key), "first": series[key][1][0], "final": finals.get(key)} for key in series),
            key=lambda r: (r["step"] is None, r["step"] if r["step"] is not None else 0),
        )
        order = [key for key in PAPER_ORDER if crossings.get(key) is not None]
        verdict = None
        caution = None
        n_qk = _final_recall(run, "qk").get("n")
        if n_qk and n_qk <= 10:
            caution = f"W_K² recall is read on the {n_qk} fixed triggers (as in the paper), so it moves in steps of 1/{n_qk} and its half-way step is coarse."
        if len(order) == len(PAPER_ORDER):
            steps = [crossings[key] for key in PAPER_ORDER]
            names = ["W_O²", "W_K²", "W_K¹"]
            text = " → ".join(f"{n} (step ≈ {s:.0f})" for n, s in zip(names, steps))
            if steps[0] < steps[1] < steps[2]:
                verdict = f"Measured order: {text}. This is the paper's top-down order (claim 2)."
            elif steps == sorted(steps):
                verdict = f"Measured order: {text}. Consistent with the paper's top-down order, but some memories cross at the same step; more checkpoints would separate them."
            else:
                verdict = f"Measured order: {text}. This differs from the paper's top-down order (W_O², then W_K², then W_K¹)."
        image = figures.birth_curves(series, crossings, labels, title=run.name)
        items.append({"name": run.name, "image": image, "table": table, "verdict": verdict, "caution": caution,
                      "n_checkpoints": len(run.checkpoints), "pair": (p, i)})  # fmt: skip
    return {"runs": items} if items else None


# ---- per-model sections ------------------------------------------------------------


def heatmaps(data: ReportData) -> dict | None:
    items = []
    for entry in data.models:
        scores = entry.probe.get("scores") or {}
        if not scores:
            continue
        highlight = {name: entry.top_head(name)[:2] for name in SCORE_NAMES if name in scores and entry.top_head(name)}
        items.append({"name": entry.name, "image": figures.score_heatmaps(scores, entry.name, highlight)})
    return {"items": items} if items else None


def top_heads(data: ReportData) -> dict | None:
    items = []
    for entry in data.models:
        tops = entry.probe.get("top") or {}
        columns = [name for name in SCORE_NAMES if tops.get(name)]
        if not columns:
            continue
        n = max(len(tops[name]) for name in columns)
        rows = [[(head_name(tops[c][r][:2]), tops[c][r][2]) if r < len(tops[c]) else None for c in columns] for r in range(min(n, N_TOP))]
        items.append({"name": entry.name, "columns": [SCORE_TITLES[c] for c in columns], "rows": rows})
    return {"items": items} if items else None


def patterns(data: ReportData) -> dict | None:
    items = []
    for entry in data.models:
        example = entry.example
        if not example or not example.get("patterns"):
            continue
        images = []
        for role, title in (("prev_token", "previous-token head"), ("induction", "induction head")):
            pattern = example["patterns"].get(role)
            if pattern:
                label = f"{entry.name}: {title} {head_name(pattern['head'])}"
                images.append(figures.attention_pattern(pattern["pattern"], example["tokens"], label))
        items.append({"name": entry.name, "tokens": example["tokens"], "images": images})
    return {"items": items} if items else None


def induction_loss(data: ReportData) -> dict | None:
    curves = []
    for entry in data.models:
        loss = entry.probe.get("induction_loss") or {}
        if loss.get("per_position") and loss.get("length"):
            curves.append({"name": entry.name, **loss})
    if not curves:
        return None
    return {"image": figures.induction_loss_curves(curves), "curves": curves}


def memory(data: ReportData) -> dict | None:
    items = []
    for entry in data.models:
        recall = entry.probe.get("memory_recall") or {}
        rows = []
        for key, label in (("ov", "OV: output memory (copying)"), ("qk", "QK: prefix matching P → I"),
                           ("positional", "positional: attend to t-1"), ("feed_forward", "feed-forward: bigram memory")):  # fmt: skip
            r = recall.get(key)
            if r:
                rows.append({"label": label, "heads": " → ".join(head_name(h) for h in r.get("heads") or []) or "—",
                             "value": r.get("value"), "metric": r.get("metric"), "chance": r.get("chance"),
                             "rank": r.get("mean_rank"), "n": r.get("n"), "reason": r.get("reason")})  # fmt: skip
        if rows:
            items.append({"name": entry.name, "rows": rows})
    return {"items": items} if items else None


def composition(data: ReportData) -> dict | None:
    items = []
    for entry in data.models:
        comp = entry.probe.get("composition") or {}
        top_k = (comp.get("top") or {}).get("K") or []
        block = entry.composition
        image = None
        if block and (len(block["rows"]) > 1 or len(block["cols"]) > 1):
            image = figures.composition_heatmap(block["K"], [head_name(h) for h in block["rows"]], [head_name(h) for h in block["cols"]],
                                                f"{entry.name}: K-composition, strongest heads")  # fmt: skip
        pairs = [{"from": head_name(p[:2]), "to": head_name(p[2:4]), "score": p[4]} for p in top_k[:N_TOP] if len(p) == 5]
        single = None
        if block and len(block["rows"]) == 1 and len(block["cols"]) == 1:
            single = {"from": head_name(block["rows"][0]), "to": head_name(block["cols"][0]), "score": block["K"][0][0]}
        if image or pairs or single:
            items.append({"name": entry.name, "image": image, "pairs": pairs, "single": single})
    return {"items": items} if items else None


def ablation(data: ReportData) -> dict | None:
    items = []
    for entry in data.models:
        views = intervention_views(entry.ablation, entry.n_layers, entry.n_heads) if entry.ablation else []
        if not views:
            continue
        for view in views:
            if view["matrix"] is not None:
                what = "ablating each head alone" if view["kind"] == "ablation" else "patching each head alone"
                if view["xlabel"] != "head":
                    what = f"{view['kind']} sweep over {view['site'] or 'components'}"
                view["image"] = figures.effect_heatmap(view["matrix"], what, view["label"], xlabel=view["xlabel"])
        items.append({"name": entry.name, "views": views})
    return {"items": items} if items else None


SECTIONS: tuple[tuple[str, str, Callable[[ReportData], dict | None]], ...] = (
    ("summary", "Summary", summary),
    ("claims", "The paper's claims, as measured", claims),
    ("comparison", "Side by side", comparison),
    ("birth", "The birth of the induction head", birth),
    ("heatmaps", "Attention scores over layers and heads", heatmaps),
    ("top_heads", "Strongest heads", top_heads),
    ("patterns", "Attention patterns of the strongest heads", patterns),
    ("induction_loss", "Induction loss along a repeated sequence", induction_loss),
    ("memory", "Memory recall", memory),
    ("composition", "Composition between the strongest heads", composition),
    ("ablation", "Ablation and patching", ablation),
)


def build_sections(data: ReportData) -> list[Section]:
    """The sections that have data, in page order."""
    out = []
    for key, title, build in SECTIONS:
        context = build(data)
        if context is not None:
            out.append(Section(key, title, context))
    return out


def fmt_number(value, digits: int = 3) -> str:
    """Numbers for tables: None/NaN as a dash, small and large values readable."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"
