"""The one-command demo: train the toy, watch its induction head being born, set it beside SmolLM2.

    result = run_demo(Path("demo-out"))          # about 5 minutes on 2 CPU cores
    result.report                                # demo-out/report.html
    print("\\n".join(result.summary))             # five lines
    result.timings                               # seconds per stage

Stages: train the quick preset (checkpoints every 20 steps, so the birth has 21
points; the trajectory is the preset's), probe every checkpoint, describe the final
toy, load SmolLM2 offline, probe it, ablate the induction heads of both (when the
ablation API is present), write the report and its JSON bundle.

``quick=True`` shrinks everything (a tiny toy, a few steps, short prompts) for tests;
``llm`` names another model (any ``birthlens.load`` spec), or passes a model already
loaded, or None to leave the language model out.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from birthlens.errors import BirthlensError

LLM_DEFAULT = "smollm2-135m"
DEMO_CHECKPOINT_EVERY = 20
# Probe settings for the language model: the suite's defaults, and a light set for tests.
LLM_PROBE = {"length": 50, "batch_size": 8, "n_tokens": 512, "composition": True}
QUICK_LLM_PROBE = {"length": 12, "batch_size": 2, "n_tokens": 64, "composition": False}


@dataclass
class DemoResult:
    report: Path
    bundle: Path
    summary: list[str]
    timings: dict[str, float] = field(default_factory=dict)


class Stages:
    """Times each stage and shows an overall progress bar over the stages."""

    def __init__(self, names: list[str], quiet: bool):
        from tqdm.auto import tqdm

        self.timings: dict[str, float] = {}
        self.bar = tqdm(total=len(names), desc="demo", unit="stage", disable=quiet or not sys.stderr.isatty(),
                        bar_format="{desc}: {n_fmt}/{total_fmt} stages |{bar}| {elapsed}")  # fmt: skip

    @contextmanager
    def stage(self, name: str):
        self.bar.set_description(f"demo: {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 2)
            self.bar.update(1)

    def close(self) -> None:
        self.bar.set_description("demo")
        self.bar.close()


def demo_config(quick: bool):
    """The training config: the quick preset with denser checkpoints, or a tiny one for tests."""
    from birthlens.models.training import preset

    config = preset("quick", checkpoint_every=DEMO_CHECKPOINT_EVERY)
    if not quick:
        return config
    return replace(
        config,
        task=replace(config.task, seq_len=32),
        model=replace(config.model, d_model=32, n_ctx=32),
        steps=30, batch_size=16, eval_every=10, checkpoint_every=10, eval_batch_size=32,
    )  # fmt: skip


def ablation_api():
    """The head-ablation function of issue 5, or None while it has not landed."""
    try:
        from birthlens.probes import interventions
    except ImportError:
        return None
    return getattr(interventions, "ablate_heads", None) or getattr(interventions, "ablate", None)


def ablate_entry(model, entry, quick: bool) -> None:
    """Ablate the entry's induction head (and sweep every head) with the ablation API, if any."""
    ablate = ablation_api()
    if ablate is None:
        return
    head = tuple(entry.probe["memory_recall"]["induction_head"])
    result = ablate(model, [head], **({"batch_size": 2, "length": 12} if quick else {}))
    entry.ablation = result.to_dict() if hasattr(result, "to_dict") else result
    entry.ablation.setdefault("model", entry.name)


def pick_compare_steps(birth) -> list[int]:
    """Steps for the comparison table: the start and the checkpoint just past the
    induction attention's half-way step (the final step is the toy's own column)."""
    steps = [row["step"] for row in birth.checkpoints]
    crossing = birth.crossings().get("induction_probe")
    picks = [steps[0]]
    if crossing is not None:
        after = [s for s in steps if s >= crossing]
        if after and after[0] not in (steps[0], steps[-1]):
            picks.append(after[0])
    return picks


def run_demo(
    out_dir: Path,
    *,
    quick: bool = False,
    llm=LLM_DEFAULT,
    device: str = "cpu",
    quiet: bool = False,
) -> DemoResult:
    """Train, probe, compare, report. Re-running into the same folder reuses the trained run."""
    import birthlens
    from birthlens.models.checkpoints import list_checkpoints, load_checkpoint_model
    from birthlens.models.training import Run, train
    from birthlens.reports.birth import probe_run
    from birthlens.reports.entries import ModelEntry, describe_model
    from birthlens.reports.html import write_report
    from birthlens.reports.report import bundle
    from birthlens.reports.sections import ReportData

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BirthlensError(f"{out_dir} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / "quick"
    config = demo_config(quick)
    llm_name = llm if isinstance(llm, str) else getattr(getattr(llm, "cfg", None), "model_name", "language model")
    names = ["train toy", "probe checkpoints", "describe toy"]
    if llm is not None:
        names += [f"load {llm_name}", f"probe {llm_name}"]
    names += ["ablate", "write report"]
    stages = Stages(names, quiet)
    data = ReportData(title="birthlens demo: the birth of an induction head, and SmolLM2 beside it")
    try:
        with stages.stage("train toy"):
            train(config, run_dir, resume=Run(run_dir).exists(), device=device, quiet=quiet)
        with stages.stage("probe checkpoints"):
            birth = probe_run(run_dir, device=device, quiet=quiet)
            data.runs.append(birth)
        with stages.stage("describe toy"):
            last, path = list(list_checkpoints(run_dir).items())[-1]
            toy = load_checkpoint_model(path, device=device)
            toy_entry = describe_model(toy, f"{birth.name}@{last}", result=birth.final_result, task_config=config.task, source=str(run_dir))
            data.models.append(toy_entry)
            data.compare_only = [ModelEntry.from_probe_json(birth.probes[s], source=str(run_dir)) for s in pick_compare_steps(birth)]
        models = [(toy, toy_entry)]
        if llm is not None:
            with stages.stage(f"load {llm_name}"):
                llm_model = birthlens.load(llm, device=device) if isinstance(llm, str) else llm
            with stages.stage(f"probe {llm_name}"):
                llm_entry = describe_model(llm_model, llm_name, source=llm_name if isinstance(llm, str) else "",
                                           **(QUICK_LLM_PROBE if quick else LLM_PROBE))  # fmt: skip
                data.models.append(llm_entry)
                models.append((llm_model, llm_entry))
        with stages.stage("ablate"):
            if ablation_api() is None:
                data.notes.append("Ablation was skipped: this birthlens has no ablation API yet.")
            for model, entry in models:
                ablate_entry(model, entry, quick)
        with stages.stage("write report"):
            report = write_report(data, out_dir / "report.html")
            bundle_path = out_dir / "report.json"
            bundle_path.write_text(json.dumps(bundle(data), allow_nan=False) + "\n")
    finally:
        stages.close()
    return DemoResult(report=report, bundle=bundle_path, summary=summary_lines(data), timings=stages.timings)


def _fmt(value, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def summary_lines(data) -> list[str]:
    """Five lines: the toy's training, its birth order, its heads, the LLM's heads and its induction loss."""
    from birthlens.reports.ablation import head_effect
    from birthlens.reports.sections import head_name

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
        scores = entry.probe["scores"]
        score = lambda name, h: scores[name][h[0]][h[1]] if h else None  # noqa: E731
        effect = head_effect(entry.ablation, i) if entry.ablation else None
        ablation = f"; ablating {head_name(i)} changes {entry.ablation.get('metric', 'the metric')} by {effect:+.2f}" if effect is not None else ""
        lines.append(
            f"{entry.name}: previous-token head {head_name(p)} ({_fmt(score('prev_token', p))}), "
            f"induction head {head_name(i)} ({_fmt(score('induction', i))}){ablation}"
        )
    llm = data.models[-1] if len(data.models) > 1 else None
    if llm is not None:
        loss = llm.probe["induction_loss"]
        lines.append(
            f"{llm.name} on a repeated random sequence: loss {_fmt(loss['first_half'])} nats on the first copy, "
            f"{_fmt(loss['second_half'])} on the second"
        )
    return lines[:5]
