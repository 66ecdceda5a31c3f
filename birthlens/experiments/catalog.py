"""The experiments behind the claims: which runs each needs, and how it reads them.

    exp = EXPERIMENTS["top-down"]
    specs = exp.specs(get_scale("small"), seeds=[0, 1, 2])     # RunSpecs for the sweep
    claim = exp.analyse(Path("out/runs"), get_scale("small"), [0, 1, 2])

Runs are named by what they are, not by which experiment asked for them, so experiments
share runs: top-down, output-before-attention and the freezing baseline all read the
same ``simplified-s<seed>`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from statistics import mean
from typing import Callable

from birthlens.experiments import verdicts as V
from birthlens.experiments.claims import Claim
from birthlens.experiments.curves import final_value, first_step_at_least, half_final_step, value_at, within_of_final
from birthlens.experiments.recording import read_recording
from birthlens.experiments.scales import Scale
from birthlens.experiments.sweep import RunSpec
from birthlens.models.training import Run, TrainConfig

# The parameters of the simplified model, by the paper's names.
W_K1, W_K2, W_O2 = "blocks.0.attn.W_K", "blocks.1.attn.W_K", "blocks.1.attn.W_O"


@dataclass(frozen=True)
class Experiment:
    name: str
    claim_ids: tuple[str, ...]
    specs: Callable[[Scale, list[int]], list[RunSpec]]
    analyse: Callable[..., list[Claim]]
    summary: str


def with_task(config: TrainConfig, **changes) -> TrainConfig:
    return replace(config, task=replace(config.task, **changes))


def _fmt(values, digits: int = 2) -> str:
    def one(v):
        if v is None:
            return "-"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    return "[" + ", ".join(one(v) for v in values) + "]"


def _mean(values, digits: int = 2) -> str:
    known = [v for v in values if v is not None]
    return f"{mean(known):.{digits}f}" if known else "-"


def _metrics(root: Path, name: str) -> tuple[list[int], dict[str, list]]:
    rows = Run(Path(root) / name).read_metrics()
    keys = {key for row in rows for key in row}
    return [r["step"] for r in rows], {key: [r.get(key) for r in rows] for key in keys}


def _recording(root: Path, name: str) -> tuple[list[int], dict[str, list]]:
    rows = read_recording(Path(root) / name)
    keys = {key for row in rows for key in row}
    return [r["step"] for r in rows], {key: [r.get(key) for r in rows] for key in keys}


# ---- 1. global statistics before in-context ------------------------------------

GLOBAL_MODELS = ("full", "simplified_ff")


def _global_config(scale: Scale, model: str, seed: int) -> TrainConfig:
    base = scale.full_config() if model == "full" else replace(scale.base, model=replace(scale.base.model, feed_forward=True))
    return replace(base, loss_on="all", seed=seed, eval_every=scale.record_every, checkpoint_every=base.steps)


def global_specs(scale: Scale, seeds: list[int]) -> list[RunSpec]:
    return [
        RunSpec(f"global-{model}-s{seed}", _global_config(scale, model, seed), tags={"experiment": "global-first", "model": model})
        for model in GLOBAL_MODELS
        for seed in seeds
    ]


def global_analyse(root: Path, scale: Scale, seeds: list[int], **_) -> list[Claim]:
    per_seed = []
    for model in GLOBAL_MODELS:
        for seed in seeds:
            steps, m = _metrics(root, f"global-{model}-s{seed}")
            per_seed.append({
                "model": model,
                "seed": seed,
                "step_bigram": within_of_final(steps, m["bigram_loss"], 0.10),
                "step_icl": first_step_at_least(steps, m["icl_accuracy"], 0.5),
                "final_bigram_loss": final_value(steps, m["bigram_loss"]),
                "final_icl_accuracy": final_value(steps, m["icl_accuracy"]),
            })
    verdict, note = V.global_first_verdict(per_seed)
    parts = []
    for model in GLOBAL_MODELS:
        rows = [r for r in per_seed if r["model"] == model]
        parts.append(f"{model}: bigram loss within 10% of final at steps {_fmt([r['step_bigram'] for r in rows])}, "
                     f"ICL accuracy 0.5 at {_fmt([r['step_icl'] for r in rows])} (final ICL acc "
                     f"{_fmt([r['final_icl_accuracy'] for r in rows])})")
    return [Claim("1", "global-first", verdict, "; ".join(parts), len(seeds), note, scale.name,
                  figures={"per_run": per_seed, "loss_on": "all", "steps": scale.base.steps})]


# ---- 2 and 3. top-down order, output memory under uniform attention --------------


def _recorded_base(scale: Scale, seed: int) -> TrainConfig:
    return replace(scale.base, seed=seed, eval_every=scale.record_every, checkpoint_every=scale.record_every)


def baseline_specs(scale: Scale, seeds: list[int]) -> list[RunSpec]:
    return [RunSpec(f"simplified-s{seed}", _recorded_base(scale, seed), tags={"experiment": "top-down", "freeze": "none"}, record=True)
            for seed in seeds]


def _negated(values: list) -> list:
    return [None if v is None else -v for v in values]


def optimizer_note(scale: Scale) -> str:
    """Top-down timing is an argument about gradient steps; say which optimizer made them."""
    c = scale.base
    text = f"optimizer {c.optimizer} (lr {c.lr:g}"
    text += f", momentum {c.momentum:g})" if c.optimizer == "sgd" else ")"
    if c.optimizer != "sgd":
        text += ("; the paper's analysis is for SGD: Adam rescales each coordinate's step, so a matrix with a tiny "
                 "gradient (W_K^2 while W_O^2 is small) still moves at full speed")
    return text


def memory_times(root: Path, name: str) -> dict:
    """Halfway steps of the three memories of one recorded run, and its ICL milestones."""
    steps, r = _recording(root, name)
    msteps, m = _metrics(root, name)
    return {
        "t_wo2": half_final_step(steps, r["wo2_recall"]),
        "t_wk2": half_final_step(steps, r["wk2_recall"]),
        "t_wk1": half_final_step(steps, r["wk1_recall"]),
        # Recall is top-1, so it sees a matrix's direction, not its size; when attention
        # sharpens says when a key memory is strong enough to act.
        "t_attn2": half_final_step(steps, _negated(r["attn2_entropy"])),
        "t_attn1": half_final_step(steps, _negated(r["attn1_entropy"])),
        "final_wo2": final_value(steps, r["wo2_recall"]),
        "final_wk2": final_value(steps, r["wk2_recall"]),
        "final_wk1": final_value(steps, r["wk1_recall"]),
        "step_icl_0.9": first_step_at_least(msteps, m["icl_accuracy"], 0.9),
        "final_icl_accuracy": final_value(msteps, m["icl_accuracy"]),
    }


def top_down_analyse(root: Path, scale: Scale, seeds: list[int], **_) -> list[Claim]:
    per_seed = [{"seed": seed, **memory_times(root, f"simplified-s{seed}")} for seed in seeds]
    verdict, note = V.top_down_verdict(per_seed)
    measured = "halfway steps (W_O^2, W_K^2, W_K^1): " + "; ".join(
        f"s{r['seed']} {_fmt([r['t_wo2'], r['t_wk2'], r['t_wk1']])}" for r in per_seed)
    measured += "; final recalls " + "; ".join(
        f"s{r['seed']} {_fmt([r['final_wo2'], r['final_wk2'], r['final_wk1']])}" for r in per_seed)
    measured += "; attention entropy halfway down (layer 2, layer 1): " + "; ".join(
        f"s{r['seed']} {_fmt([r['t_attn2'], r['t_attn1']])}" for r in per_seed)
    note += (f"; evaluation every {scale.record_every} steps; W_K^2 recall is over the {scale.base.task.k} fixed triggers "
             f"(as in the paper's code), top-1 among {scale.base.task.k} candidates; {optimizer_note(scale)}")
    return [Claim("2", "top-down", verdict, measured, len(seeds), note,
                  scale.name, figures={"per_seed": per_seed, "record_every": scale.record_every})]


def bag_of_words_analyse(root: Path, scale: Scale, seeds: list[int], **_) -> list[Claim]:
    per_seed = []
    for seed in seeds:
        name = f"simplified-s{seed}"
        steps, r = _recording(root, name)
        t = half_final_step(steps, r["wo2_recall"])
        per_seed.append({
            "seed": seed,
            "t_wo2": t,
            "wo2_at_t": None if t is None else value_at(steps, r["wo2_recall"], t),
            "entropy_at_wo2": None if t is None else value_at(steps, r["attn2_entropy"], t),
            "final_entropy": final_value(steps, r["attn2_entropy"]),
            "final_wo2": final_value(steps, r["wo2_recall"]),
            "curve": {"step": steps, "wo2_recall": r["wo2_recall"], "attn2_entropy": r["attn2_entropy"]},
        })
    verdict, note = V.bag_of_words_verdict(per_seed)
    measured = (f"layer-2 attention entropy / uniform when W_O^2 is halfway: {_fmt([r['entropy_at_wo2'] for r in per_seed])} "
                f"(W_O^2 recall there {_fmt([r['wo2_at_t'] for r in per_seed])}, steps {_fmt([r['t_wo2'] for r in per_seed])}); "
                f"at the end: entropy {_fmt([r['final_entropy'] for r in per_seed])}, recall {_fmt([r['final_wo2'] for r in per_seed])}")
    note += f"; {optimizer_note(scale)}"
    return [Claim("3", "output-before-attention", verdict, measured, len(seeds), note, scale.name, figures={"per_seed": per_seed})]


# ---- 2b. freezing ------------------------------------------------------------------

FREEZES = {"wk1": W_K1, "wo2": W_O2}


def freezing_specs(scale: Scale, seeds: list[int]) -> list[RunSpec]:
    specs = baseline_specs(scale, seeds)
    for short, param in FREEZES.items():
        for seed in seeds:
            config = replace(_recorded_base(scale, seed), freeze_until={param: scale.freeze_steps})
            specs.append(RunSpec(f"freeze-{short}-s{seed}", config, tags={"experiment": "freezing", "freeze": short}, record=True))
    return specs


def freezing_analyse(root: Path, scale: Scale, seeds: list[int], **_) -> list[Claim]:
    conditions = {"baseline": "simplified-s{}", "wk1": "freeze-wk1-s{}", "wo2": "freeze-wo2-s{}"}
    runs = {cond: [{"seed": s, **memory_times(root, pattern.format(s))} for s in seeds] for cond, pattern in conditions.items()}
    base_t = [r["t_wo2"] for r in runs["baseline"] if r["t_wo2"] is not None]
    # Paired by seed (same initial weights, same batches); allow one evaluation of jitter,
    # or the baseline's own seed spread if larger.
    tolerance = max(scale.record_every, (max(base_t) - min(base_t)) if base_t else 0)
    verdict, note = V.freezing_verdict(runs["baseline"], runs["wk1"], runs["wo2"], scale.freeze_steps, tolerance)

    def avg(rows, key):
        values = [r[key] for r in rows if r[key] is not None]
        missing = len(rows) - len(values)
        text = f"{mean(values):.0f}" if values else "never"
        return text + (f" ({missing} never)" if values and missing else "")

    label = {"baseline": "baseline", "wk1": f"W_K^1 frozen to {scale.freeze_steps}", "wo2": f"W_O^2 frozen to {scale.freeze_steps}"}
    measured = "mean halfway steps (W_O^2, W_K^2, W_K^1; ICL acc 0.9): " + "; ".join(
        f"{label[c]} ({avg(rows, 't_wo2')}, {avg(rows, 't_wk2')}, {avg(rows, 't_wk1')}; {avg(rows, 'step_icl_0.9')})"
        for c, rows in runs.items())
    note += f"; {optimizer_note(scale)}"
    return [Claim("2b", "freezing", verdict, measured, len(seeds), note, scale.name,
                  figures={"runs": runs, "freeze_steps": scale.freeze_steps, "tolerance": tolerance})]


# ---- 4. data distribution ---------------------------------------------------------


def _data_configs(scale: Scale) -> list[tuple[str, str, str, dict]]:
    """(label, factor, level, task changes); the K = 5 fixed uniform run is the shared base."""
    base_k = scale.base.task.k
    rows = [(f"k{k}", "triggers K", str(k), {"k": k}) for k in scale.trigger_counts]
    rows.append(("random", "fixed vs random triggers", "random", {"fixed_triggers": False}))
    rows.append(("bigram", "output distribution", "bigram", {"output_dist": "bigram"}))
    # The base configuration is also the "fixed" and "uniform" level of the other two factors.
    rows.append((f"k{base_k}", "fixed vs random triggers", "fixed", {"k": base_k}))
    rows.append((f"k{base_k}", "output distribution", "uniform", {"k": base_k}))
    return rows


def data_specs(scale: Scale, seeds: list[int]) -> list[RunSpec]:
    specs = {}
    for label, _, _, changes in _data_configs(scale):
        for seed in seeds:
            config = with_task(scale.base, ood_split=True, **changes)
            config = replace(config, seed=seed, eval_every=scale.eval_every, checkpoint_every=config.steps)
            specs[f"data-{label}-s{seed}"] = RunSpec(f"data-{label}-s{seed}", config, tags={"experiment": "data-distribution", "config": label})
    return list(specs.values())


def output_memory_split(run_dir: Path, device: str = "cpu") -> tuple[float | None, float | None]:
    """W_O^2 recall at the last checkpoint over the tokens seen as outputs in training, and
    over the held-out ones: why a model does or does not copy unseen outputs."""
    from birthlens.datasets import BigramTask
    from birthlens.models.checkpoints import find_checkpoint, load_checkpoint_model
    from birthlens.probes.memory import ov_recall

    config = Run(run_dir).read_config()
    task = BigramTask(config.task)
    model = load_checkpoint_model(find_checkpoint(run_dir), device=device)
    return (ov_recall(model, (1, 0), tokens=task.train_outputs).value, ov_recall(model, (1, 0), tokens=task.test_outputs).value)


def data_analyse(root: Path, scale: Scale, seeds: list[int], device: str = "cpu", **_) -> list[Claim]:
    configs = []
    for label, factor, level, _ in _data_configs(scale):
        steps_09, ood, icl, memory = [], [], [], []
        for seed in seeds:
            steps, m = _metrics(root, f"data-{label}-s{seed}")
            steps_09.append(first_step_at_least(steps, m["icl_accuracy"], 0.9))
            ood.append(final_value(steps, m["ood_icl_accuracy"]))
            icl.append(final_value(steps, m["icl_accuracy"]))
            memory.append(output_memory_split(root / f"data-{label}-s{seed}", device))
        configs.append({"label": label, "factor": factor, "level": level, "steps_to_09": steps_09, "ood_acc": ood, "icl_acc": icl,
                        "wo2_recall_seen": [x[0] for x in memory], "wo2_recall_held_out": [x[1] for x in memory]})
    never = scale.base.steps + scale.eval_every
    verdict, note = V.data_distribution_verdict(configs, never=never, min_gap=scale.eval_every)
    unique = list({c["label"]: c for c in configs}.values())
    measured = "steps to ICL acc 0.9 (per seed, - = not within {}), final ICL / OOD acc (mean): ".format(scale.base.steps) + "; ".join(
        f"{c['label']} {_fmt(c['steps_to_09'])} {_mean(c['icl_acc'])} / {_mean(c['ood_acc'])}" for c in unique)
    measured += "; W_O^2 recall on seen / held-out outputs (mean): " + ", ".join(
        f"{c['label']} {_mean(c['wo2_recall_seen'])} / {_mean(c['wo2_recall_held_out'])}" for c in unique)
    return [Claim("4", "data-distribution", verdict, measured, len(seeds), note, scale.name,
                  figures={"configs": configs, "never": never})]


# ---- 5. pretrained model ----------------------------------------------------------


def pretrained_analyse(root: Path, scale: Scale, seeds: list[int], device: str = "cpu", model_spec: str = "smollm2-135m", **_) -> list[Claim]:
    from birthlens.experiments.pretrained import pretrained_claim

    return [pretrained_claim(model_spec, device=device, scale=scale.name)]


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment("global-first", ("1",), global_specs, global_analyse,
                   "loss on all targets (full model; simplified + feed-forward): bigram loss vs ICL accuracy"),
        Experiment("top-down", ("2",), baseline_specs, top_down_analyse,
                   "memory recall of W_O^2, W_K^2, W_K^1 at every evaluation; order of halfway steps"),
        Experiment("output-before-attention", ("3",), baseline_specs, bag_of_words_analyse,
                   "W_O^2 recall next to layer-2 attention entropy"),
        Experiment("freezing", ("2b",), freezing_specs, freezing_analyse,
                   "W_K^1 or W_O^2 frozen for a while, then released"),
        Experiment("data-distribution", ("4",), data_specs, data_analyse,
                   "steps to ICL accuracy 0.9 and OOD accuracy vs K, trigger and output distributions"),
        Experiment("pretrained", ("5",), lambda scale, seeds: [], pretrained_analyse,
                   "previous-token and induction heads in SmolLM2-135M"),
    )
}
