"""`birthlens patch SPEC`: activation patching and path patching between clean and corrupted prompts.

    birthlens patch smollm2-135m                              # every head, denoising, top 10
    birthlens patch runs/quick --site resid_pre --per-position --metric logit_diff --data task
    birthlens patch runs/quick --heads 1.0 --direction noising
    birthlens patch runs/quick --path-from 0.0 --path-to 1.0 --receiver-input k --source mean
"""

from __future__ import annotations


from birthlens.commands.ablate import (
    add_data_options,
    check_head_list,
    check_options,
    describe_data,
    finish,
    load_model,
    number,
    parse_heads,
    parse_layers,
    prompt_options,
    show_progress,
)
from birthlens.commands import HelpFormatter
from birthlens.errors import BirthlensError

PATH_PAIR_ERR = "path patching needs both --path-from (sender heads) and --path-to (receiver heads)"
MIXED_ERR = "choose one of: --heads/--layers (patch them together), --path-from/--path-to (path patching), or neither (a sweep)"
SAME_METRIC_NOTE = "(clean and corrupted prompts give the same metric, so there is nothing to normalise; try --metric logit_diff)"
POSITIONS_ERR = "--positions takes position indices separated by commas (e.g. 0,5,-1), got {text!r}"


def register(subparsers) -> None:
    from birthlens.probes.patching import DIRECTIONS
    from birthlens.probes.path_patching import RECEIVER_INPUTS, SOURCES

    parser = subparsers.add_parser(
        "patch",
        help="activation patching between clean and corrupted prompts, and path patching",
        description="Copy activations between a clean prompt ([BOS] A A, or the bigram-trigger task) and a "
        "corrupted one (second copy re-drawn, or trigger outputs re-drawn) and report how much of the "
        "metric they restore, normalised to 0 = corrupted, 1 = clean. Without --heads/--layers, patches "
        "every component of --site alone and lists the most important. --path-from/--path-to change "
        "sender heads only on their route into the receivers' query, key or value input.",
        formatter_class=HelpFormatter,
    )
    add_data_options(parser)
    parser.add_argument("--direction", default="denoising", metavar="|".join(DIRECTIONS), help="denoising: clean activations into the corrupted run; noising: the reverse")
    parser.add_argument("--site", default="head", metavar="head|attn_out|mlp_out|resid_pre", help="what a sweep runs over")
    parser.add_argument("--per-position", action="store_true", help="sweep: patch one position at a time")
    parser.add_argument("--positions", default=None, metavar="P[,P...]", help="only these positions (negative counts from the end)")
    parser.add_argument("--heads", default=None, metavar="L.H[,L.H...]", help="patch these heads together")
    parser.add_argument("--layers", default=None, metavar="attn.L|mlp.L|resid.L[,...]", help="patch these layer outputs together")
    parser.add_argument("--path-from", default=None, metavar="L.H[,...]", help="path patching: sender heads")
    parser.add_argument("--path-to", default=None, metavar="L.H[,...]", help="path patching: receiver heads")
    parser.add_argument("--receiver-input", default="k", metavar="|".join(RECEIVER_INPUTS), help="path patching: which input of the receivers")
    parser.add_argument("--source", default="mean", metavar="|".join(SOURCES), help="path patching: the senders' new output (an ablation, or their corrupted-run output)")
    parser.set_defaults(func=run)


def _positions(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise BirthlensError(POSITIONS_ERR.format(text=text)) from exc


def _check(args) -> None:
    from birthlens.probes.effects import check_table_site
    from birthlens.probes.patching import DIRECTIONS, UNKNOWN_DIRECTION_ERR
    from birthlens.probes.path_patching import RECEIVER_INPUTS, SOURCES, UNKNOWN_INPUT_ERR, UNKNOWN_SOURCE_ERR

    check_options(args)
    check_table_site(args.site)
    if args.direction not in DIRECTIONS:
        raise BirthlensError(UNKNOWN_DIRECTION_ERR.format(value=args.direction))
    if args.receiver_input not in RECEIVER_INPUTS:
        raise BirthlensError(UNKNOWN_INPUT_ERR.format(value=args.receiver_input))
    if args.source not in SOURCES:
        raise BirthlensError(UNKNOWN_SOURCE_ERR.format(value=args.source))
    for text in (args.heads, args.path_from, args.path_to):
        check_head_list(text)
    path = args.path_from is not None or args.path_to is not None
    if path and (args.path_from is None or args.path_to is None):
        raise BirthlensError(PATH_PAIR_ERR)
    if path and (args.heads or args.layers):
        raise BirthlensError(MIXED_ERR)


def _run_path(args, model) -> int:
    from birthlens.probes.path_patching import path_patch

    result = path_patch(model, parse_heads(model, args.path_from), parse_heads(model, args.path_to), receiver_input=args.receiver_input, source=args.source, **prompt_options(args))
    print(f"model     {args.spec}")
    print(f"route     {', '.join(result.senders)} -> {args.receiver_input} input of {', '.join(result.receivers)} (senders' output: {result.source})")
    print(f"data      {describe_data(result.data)}")
    print(f"{'metric':<18} {'baseline':>10} {'full':>10} {'path':>10}")
    print(f"{result.metric:<18} {number(result.baseline)} {number(result.full)} {number(result.path)}")
    print(f"the route carries {result.fraction:.1%} of the senders' effect ((baseline - path) / (baseline - full))")
    return finish(args, result.to_dict(), result.note)


def run(args) -> int:
    from birthlens.probes.patching import patch, patching_sweep

    _check(args)
    positions = _positions(args.positions)
    model = load_model(args.spec, args.device)
    if args.path_from is not None:
        return _run_path(args, model)
    components = parse_heads(model, args.heads) + parse_layers(model, args.layers)
    if components:
        result = patch(model, components, direction=args.direction, positions=positions, **prompt_options(args))
        print(f"model     {args.spec}")
        print(f"patched   {', '.join(result.components)} ({args.direction}" + (f", positions {result.positions})" if result.positions else ")"))
        print(f"data      {describe_data(result.data)}")
        print(f"{'metric':<18} {'clean':>10} {'corrupted':>10} {'patched':>10} {'normalised':>10}")
        print(f"{result.metric:<18} {number(result.clean)} {number(result.corrupted)} {number(result.patched)} {number(result.normalised)}")
        return finish(args, result.to_dict(), result.note)

    result = patching_sweep(
        model, site=args.site, direction=args.direction, per_position=args.per_position, positions=positions, progress=show_progress(args), **prompt_options(args)
    )
    print(f"model     {args.spec}")
    print(f"patched   every {args.site} alone ({args.direction}" + (", one position at a time)" if args.per_position else ")"))
    print(f"data      {describe_data(result.data)}")
    print(f"metric    {result.metric}: clean {result.clean:.4f}, corrupted {result.corrupted:.4f}; normalised 0 = corrupted, 1 = clean")
    print(f"{'component':>10}" + (f" {'position':>8}" if args.per_position else "") + f" {'normalised':>10}")
    for entry in result.top(args.top):
        print(f"{entry[0]:>10}" + (f" {entry[1]:>8}" if args.per_position else "") + f" {number(entry[-1])}")
    if result.clean == result.corrupted:
        print(SAME_METRIC_NOTE)
    return finish(args, result.to_dict(top=args.top), result.note)
