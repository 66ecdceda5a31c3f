"""The report in five lines: what the demo prints, and the summary's "at a glance".

    lines = glance(data)      # data: a ReportData with a training run and/or models

1. the toy's training (in-context accuracy and loss, first and last evaluation);
2. the half-way steps of W_O², W_K², W_K¹ and whether they come in the paper's order;
3.-4. each model's previous-token and induction head (and the ablation effect);
5. the language model's induction loss, first copy vs second.
"""

from __future__ import annotations

from birthlens.reports.ablation import head_effect
from birthlens.reports.entries import head_name


def _fmt(value, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def glance(data) -> list[str]:
    """Five lines: the toy's training, its birth order, its heads, the LLM's heads and its induction loss."""
    lines = []
    birth = data.runs[0] if data.runs else None
    if birth is not None:
        first, last = (birth.metrics[0], birth.metrics[-1]) if birth.metrics else ({}, {})
        lines.append(
            f"toy ({birth.config.get('preset', 'custom')} preset, {birth.config.get('steps')} steps): in-context accuracy "
            f"{_fmt(first.get('icl_accuracy'))} -> {_fmt(last.get('icl_accuracy'))}, in-context loss "
            f"{_fmt(first.get('icl_loss'))} -> {_fmt(last.get('icl_loss'))} nats"
        )
        cross = birth.crossings()
        order = {k: cross.get(k) for k in ("ov", "qk", "positional")}
        text = ", ".join(f"{label} ≈ {_fmt(order[k], '.0f')}" for k, label in (("ov", "W_O²"), ("qk", "W_K²"), ("positional", "W_K¹")))
        known = [order[k] for k in ("ov", "qk", "positional")]
        verdict = "n/a" if None in known else ("yes" if known == sorted(known) else "no")
        lines.append(f"birth, half-way steps: {text}; top-down as in the paper: {verdict}")
    for entry in data.models:
        memory = entry.probe.get("memory_recall") or {}
        p, i = memory.get("prev_head"), memory.get("induction_head")
        scores = entry.probe.get("scores") or {}
        score = lambda name, h: scores[name][h[0]][h[1]] if h and name in scores else None  # noqa: E731
        effect = head_effect(entry.ablation, i) if entry.ablation else None
        ablation = f"; ablating it changes {effect[1]} by {effect[0]:+.2f}" if effect is not None else ""
        task = entry.probe.get("task")
        if task:  # the toy: its own data says more than random repeated tokens
            heads = (f"previous-token head {head_name(p)}, induction head {head_name(i)} (the paper's attention probes "
                     f"on the trigger task: {_fmt(task.get('prev_token_probe'))} / {_fmt(task.get('induction_probe'))})")
        else:
            heads = (f"previous-token head {head_name(p)} ({_fmt(score('prev_token', p))}), "
                     f"induction head {head_name(i)} ({_fmt(score('induction', i))})")
        lines.append(f"{entry.name}: {heads}{ablation}")
    # The language model: the last model that is not a toy (a toy's probe has task metrics).
    llm = next((e for e in reversed(data.models) if not e.probe.get("task")), None)
    if llm is not None and llm.probe.get("induction_loss"):
        loss = llm.probe["induction_loss"]
        lines.append(
            f"{llm.name} on a repeated random sequence: loss {_fmt(loss['first_half'])} nats on the first copy, "
            f"{_fmt(loss['second_half'])} on the second"
        )
    return lines[:5]
