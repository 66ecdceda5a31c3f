"""The one-command demo: train the toy, watch its induction head being born, set it beside SmolLM2.

    result = run_demo(Path("demo-out"))          # under 10 minutes on 2 CPU cores
    result.report                                # demo-out/report.html
    print("\\n".join(result.summary))             # five lines
    result.timings                               # seconds per stage

Stages: train the quick preset (checkpoints every 20 steps, so the birth has 51
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
        self.bar.set_description_str(f"demo: {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 2)
            self.bar.update(1)

    def close(self) -> None:
        self.bar.set_description_str("demo")
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
    """(ablate, ablation_sweep) from ``birthlens.probes.ablation``, or None where it is missing."""
    try:
        from birthlens.probes.ablation import ablate, ablation_sweep
    except ImportError:
        return None
    return ablate, ablation_sweep


def ablate_entry(model, entry, *, sweep: bool, quick: bool, task=None) -> None:
    """Mean-ablate the entry's induction head I, then its previous-token head P, each alone
    (metric: in-context accuracy on the toy, second-copy loss on a language model) and, with
    ``sweep``, every head alone. A sweep over SmolLM2's 270 heads costs minutes on a CPU,
    so the demo sweeps the toy only."""
    api = ablation_api()
    if api is None:
        return
    ablate, ablation_sweep = api
    memory = entry.probe["memory_recall"]
    kwargs = {}
    if quick:
        kwargs = {"batch_size": 16} if task is not None else {"batch_size": 2, "length": 12}
    if task is not None:
        kwargs["task"] = task
    result = {"model": entry.name}
    for role in ("induction_head", "prev_head"):
        if memory.get(role) is not None:
            result[f"ablate_{role}"] = ablate(model, [tuple(memory[role])], method="mean", **kwargs).to_dict()
    if sweep:
        result["sweep"] = ablation_sweep(model, method="mean", **kwargs).to_dict()
    entry.ablation = result


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
    from birthlens.reports.glance import glance
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
            birth = probe_run(run_dir, device=device, quiet=quiet, **({"batch_size": 4, "task_batch_size": 16} if quick else {}))
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
                toy_model = model is toy
                ablate_entry(model, entry, sweep=toy_model, quick=quick, task=config.task if toy_model else None)
        with stages.stage("write report"):
            report = write_report(data, out_dir / "report.html")
            bundle_path = out_dir / "report.json"
            bundle_path.write_text(json.dumps(bundle(data), allow_nan=False) + "\n")
    finally:
        stages.close()
    return DemoResult(report=report, bundle=bundle_path, summary=glance(data), timings=stages.timings)
