"""`birthlens ablate SPEC`: knock out heads or layer outputs and compare the metric with and without.

    birthlens ablate runs/quick --heads 1.0 --method mean --json ablate.json
    birthlens ablate runs/quick@40 --heads 0.0,1.0 --method zero
    birthlens ablate smollm2-135m --sweep --method mean --top 10

The options shared with `birthlens patch` (data, metric, loading, output) live here too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from birthlens.commands import HelpFormatter
from birthlens.errors import BirthlensError

HEAD_LIST_ERR = "--heads takes LAYER.HEAD pairs separated by commas (e.g. 1.0,0.3), got {text!r}"
NOTHING_ERR = "name what to ablate with --heads or --layers, or pass --sweep to ablate every head in turn"
BOTH_ERR = "--sweep ablates every component of --site in turn; drop --heads / --layers, or drop --sweep"
AT_LEAST_ONE_ERR = "--{flag} must be at least 1, got {value}"
JSON_FOLDER_ERR = "cannot write {path}: folder {folder} does not exist"


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Options every intervention command shares: the model, prompts, metric and output."""
    from birthlens.probes.metrics import METRICS
    from birthlens.probes.pairs import DATA_KINDS

    parser.add_argument("spec", help="the model: a run folder (runs/quick, runs/quick@40), a checkpoint, smollm2-135m, a .gguf file, ...")
    parser.add_argument("--metric", default="auto", metavar="NAME", help="auto, " + ", ".join(METRICS) + " (auto: icl_accuracy for toy models, else second_copy_loss)")
    parser.add_argument("--data", default=None, metavar="|".join(DATA_KINDS), help="prompts: repeated ([BOS] A A vs A A') or task (bigram-trigger task vs outputs re-drawn); default: the metric's")
    parser.add_argument("--batch-size", type=int, default=None, help="number of sequences (default: 8 repeated, 64 task)")
    parser.add_argument("--length", type=int, default=None, help="length of A in [BOS] A A (default: 50, or what fits the context)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompts")
    parser.add_argument("--top", type=int, default=10, help="how many components a sweep lists")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the result as JSON to OUT")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--dtype", default=None, metavar="float32|bfloat16", help="compute dtype of the forward passes: bfloat16 (autocast) is about 1.8x faster on CPU, values move by ~0.01")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    from birthlens.probes.ablation import MEAN_OVER, METHODS

    parser = subparsers.add_parser(
        "ablate",
        help="ablate heads or layer outputs and show the metric with and without them",
        description="Replace the output of heads (--heads 1.0,0.3) or layers (--layers attn.1,mlp.2) with "
        "zeros, their mean over a reference batch, or their value on other sequences, and compare a "
        "metric with and without. --sweep ablates every head (or --site) alone and lists the most "
        "harmful. SPEC is anything birthlens.load accepts, including a run folder at a step (runs/quick@40).",
        formatter_class=HelpFormatter,
    )
    add_data_options(parser)
    parser.add_argument("--heads", default=None, metavar="L.H[,L.H...]", help="heads to ablate together")
    parser.add_argument("--layers", default=None, metavar="attn.L|mlp.L[,...]", help="layer outputs to ablate together")
    parser.add_argument("--method", default="mean", metavar="|".join(METHODS), help="what replaces the output")
    parser.add_argument("--mean-over", default="position", metavar="|".join(MEAN_OVER), help="mean per position or over every position")
    parser.add_argument("--sweep", action="store_true", help="ablate every component of --site alone")
    parser.add_argument("--site", default="head", metavar="head|attn_out|mlp_out|resid_pre", help="what --sweep runs over")
    parser.set_defaults(func=run)


# ---- shared with `birthlens patch` ---------------------------------------------


def check_options(args) -> None:
    """Fail on bad option values before the (slow) model load; argparse's own choice errors
    would print the usage too, these are one line."""
    from birthlens.probes.interventions import COMPUTE_DTYPES, UNKNOWN_DTYPE_ERR
    from birthlens.probes.metrics import check_metric
    from birthlens.probes.pairs import DATA_KINDS, UNKNOWN_DATA_ERR

    if args.metric != "auto":
        check_metric(args.metric)
    if args.data is not None and args.data not in DATA_KINDS:
        raise BirthlensError(UNKNOWN_DATA_ERR.format(kind=args.data))
    if args.dtype is not None and args.dtype not in COMPUTE_DTYPES:
        raise BirthlensError(UNKNOWN_DTYPE_ERR.format(value=args.dtype))
    for flag in ("batch_size", "length", "top"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise BirthlensError(AT_LEAST_ONE_ERR.format(flag=flag.replace("_", "-"), value=value))
    if args.json is not None:
        folder = args.json.parent if str(args.json.parent) else Path(".")
        if not folder.is_dir():
            raise BirthlensError(JSON_FOLDER_ERR.format(path=args.json, folder=folder))


def load_model(spec: str, device: str):
    import birthlens

    return birthlens.load(spec, device=device)


def run_task(spec: str):
    """The task a training run was trained on (its config), or None for other specs."""
    path = Path(re.sub(r"@\d+$", "", spec.strip())).expanduser()
    if path.is_file() and path.parent.name == "checkpoints":
        path = path.parent.parent
    if not (path / "config.json").is_file():
        return None
    from birthlens.models.training import Run

    try:
        return Run(path).read_config().task
    except BirthlensError:
        return None


def check_head_list(text: str | None) -> None:
    if text is not None and not all(re.fullmatch(r"\s*-?\d+\.-?\d+\s*", part) for part in text.split(",")):
        raise BirthlensError(HEAD_LIST_ERR.format(text=text))


def parse_heads(model, text: str | None) -> list:
    from birthlens.probes.components import parse_components

    check_head_list(text)
    return [] if text is None else parse_components(model, text)


def parse_layers(model, text: str | None) -> list:
    from birthlens.probes.components import parse_components

    return [] if text is None else parse_components(model, text)


def show_progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def prompt_options(args) -> dict:
    """Keyword arguments that pick the prompts, shared by every intervention function."""
    return {
        "metric": args.metric,
        "data": args.data,
        "batch_size": args.batch_size,
        "length": args.length,
        "seed": args.seed,
        "task": run_task(args.spec),
        "dtype": args.dtype,
    }


def describe_data(data: dict) -> str:
    return f"{data['n_sequences']} {data['data']} sequences of {data['seq_len']} tokens, {data['n_answers']} scored predictions"


def finish(args, payload: dict, note: str | None) -> int:
    from birthlens.commands.probe import write_json

    if note:
        print(f"note: {note}")
    if args.json is not None:
        write_json({"model": args.spec, **payload}, args.json)
        print(f"wrote {args.json}")
    return 0


def number(value: float) -> str:
    return f"{value:10.4f}"


# ---- ablate ----------------------------------------------------------------


def _method_text(result) -> str:
    if result.method != "mean":
        return result.method
    return "mean over a reference batch, " + ("per position" if result.mean_over == "position" else "over all positions")


def run(args) -> int:
    from birthlens.probes.ablation import MEAN_OVER, UNKNOWN_MEAN_OVER_ERR, ablate, ablation_sweep, check_method
    from birthlens.probes.effects import check_table_site

    check_options(args)
    check_method(args.method)
    check_table_site(args.site)
    check_head_list(args.heads)
    if args.mean_over not in MEAN_OVER:
        raise BirthlensError(UNKNOWN_MEAN_OVER_ERR.format(value=args.mean_over))
    if args.sweep and (args.heads or args.layers):
        raise BirthlensError(BOTH_ERR)
    if not args.sweep and not (args.heads or args.layers):
        raise BirthlensError(NOTHING_ERR)
    model = load_model(args.spec, args.device)
    options = prompt_options(args)
    if args.sweep:
        result = ablation_sweep(model, site=args.site, method=args.method, mean_over=args.mean_over, progress=show_progress(args), **options)
        print(f"model    {args.spec}")
        print(f"ablated  every {args.site} alone ({_method_text(result)})")
        print(f"data     {describe_data(result.data)}")
        print(f"metric   {result.metric}: baseline {result.baseline:.4f}")
        print(f"{'component':>10} {'ablated':>10} {'delta':>10}")
        for name, ablated, delta in result.top(args.top):
            print(f"{name:>10} {number(ablated)} {number(delta)}")
        return finish(args, result.to_dict(top=args.top), result.note)

    components = parse_heads(model, args.heads) + parse_layers(model, args.layers)
    result = ablate(model, components, method=args.method, mean_over=args.mean_over, **options)
    print(f"model    {args.spec}")
    print(f"ablated  {', '.join(result.components)} ({_method_text(result)})")
    print(f"data     {describe_data(result.data)}")
    print(f"{'metric':<18} {'baseline':>10} {'ablated':>10} {'delta':>10}")
    print(f"{result.metric:<18} {number(result.baseline)} {number(result.ablated)} {number(result.delta)}")
    return finish(args, result.to_dict(), result.note)
