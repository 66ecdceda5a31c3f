"""`birthlens train`: train the toy model on the bigram-trigger task, checkpoint by checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from birthlens.commands import HelpFormatter
from birthlens.errors import BirthlensError

# CLI flag -> (section of TrainConfig or None for top level, field name)
TASK_FLAGS = {"k": "k", "seq_len": "seq_len", "output_dist": "output_dist", "ood": "ood_split", "fixed_triggers": "fixed_triggers"}
MODEL_FLAGS = {"variant": "variant", "d_model": "d_model", "n_ctx": "n_ctx", "feed_forward": "feed_forward", "n_layers": "n_layers", "n_heads": "n_heads", "d_mlp": "d_mlp"}
TOP_FLAGS = ("steps", "seed", "optimizer", "lr", "momentum", "weight_decay", "batch_size", "loss_on", "eval_every", "checkpoint_every", "eval_batch_size")


def register(subparsers) -> None:
    from birthlens.models.training import PRESETS

    parser = subparsers.add_parser(
        "train",
        help="train the toy model and save checkpoints",
        description="Train the paper's toy transformer on the bigram-trigger task. The run folder gets "
        "config.json, metrics.jsonl (one evaluation per line) and checkpoints/ (safetensors). "
        "Options not given come from the preset.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS), help="starting config: quick (CPU, minutes) or paper (the paper's sizes, for a GPU)")
    parser.add_argument("--out", required=True, type=Path, help="run folder to create (or to continue with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    group = parser.add_argument_group("training (default: the preset's)")
    group.add_argument("--steps", type=int, default=None, help="number of optimisation steps")
    group.add_argument("--seed", type=int, default=None, help="seed for weights and batches")
    group.add_argument("--optimizer", choices=["sgd", "adamw"], default=None)
    group.add_argument("--lr", type=float, default=None, help="learning rate")
    group.add_argument("--momentum", type=float, default=None, help="SGD momentum")
    group.add_argument("--weight-decay", type=float, default=None)
    group.add_argument("--batch-size", type=int, default=None)
    group.add_argument("--loss-on", choices=["icl", "all"], default=None, help="icl: only second-or-later trigger outputs; all: every target")
    group.add_argument("--eval-every", type=int, default=None, help="steps between evaluations")
    group.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    group.add_argument("--eval-batch-size", type=int, default=None)
    task = parser.add_argument_group("task (default: the preset's)")
    task.add_argument("--k", type=int, default=None, help="number of triggers")
    triggers = task.add_mutually_exclusive_group()
    triggers.add_argument("--fixed-triggers", dest="fixed_triggers", action="store_const", const=True, default=None, help="the K most frequent tokens are the triggers of every sequence (the paper's main task)")
    triggers.add_argument("--random-triggers", dest="fixed_triggers", action="store_const", const=False, help="each sequence draws its own K triggers from the unigram distribution (the quick preset)")
    task.add_argument("--output-dist", choices=["uniform", "bigram", "uniform_excluding_trigger"], default=None)
    task.add_argument("--seq-len", type=int, default=None, help="tokens the model sees per sequence (T)")
    task.add_argument("--ood", action="store_const", const=True, default=None, help="train on outputs from 75%% of the vocabulary, also evaluate on the other 25%%")
    model = parser.add_argument_group("model (default: the preset's)")
    model.add_argument("--variant", choices=["simplified", "full"], default=None)
    model.add_argument("--d-model", type=int, default=None)
    model.add_argument("--n-ctx", type=int, default=None, help="context length of the model (>= --seq-len)")
    model.add_argument("--feed-forward", action="store_const", const=True, default=None, help="simplified model: add a linear feed-forward after layer 1")
    model.add_argument("--n-layers", type=int, default=None, help="full model only")
    model.add_argument("--n-heads", type=int, default=None, help="full model only")
    model.add_argument("--d-mlp", type=int, default=None, help="full model only")
    parser.set_defaults(func=run)


def config_from_args(args, base):
    """Apply the flags the user gave on top of ``base`` (a TrainConfig)."""
    top = {name: getattr(args, name) for name in TOP_FLAGS if getattr(args, name) is not None}
    task = {field: getattr(args, flag) for flag, field in TASK_FLAGS.items() if getattr(args, flag) is not None}
    model = {field: getattr(args, flag) for flag, field in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    if "seq_len" in task and "n_ctx" not in model and task["seq_len"] > base.model.n_ctx:
        model["n_ctx"] = task["seq_len"]  # a longer sequence needs a longer context
    return dataclasses.replace(
        base,
        task=dataclasses.replace(base.task, **task),
        model=dataclasses.replace(base.model, **model),
        **top,
    )


def run(args) -> int:
    from birthlens.models.training import Run, preset, train

    existing = Run(args.out)
    if args.resume and existing.exists():
        config = config_from_args(args, existing.read_config())
    elif args.resume:
        raise BirthlensError(f"nothing to resume: {args.out} holds no run (drop --resume to start one)")
    else:
        config = config_from_args(args, preset(args.preset))
    rows = train(config, args.out, resume=args.resume, device=args.device, quiet=args.quiet)
    last = rows[-1]
    summary = ", ".join(f"{key}={value:.4g}" for key, value in last.items() if key != "step")
    print(f"{args.out}: step {last['step']}: {summary}")
    return 0
