"""`birthlens experiment`: reproduce the paper's claims and write the claims table.

    birthlens experiment all --scale small --out runs/experiments
    birthlens experiment top-down --seeds 5 --workers 2 --out runs/experiments
"""

from __future__ import annotations

from pathlib import Path

from birthlens.commands import HelpFormatter

NAMES = ("global-first", "top-down", "output-before-attention", "freezing", "data-distribution", "pretrained")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="run the experiments behind the paper's claims; write the claims table",
        description="Train the runs an experiment needs (in parallel, skipping finished ones), probe them, "
        "and write OUT/claims.json: one row per claim with the measured figures and a verdict "
        "(holds, does not hold, holds with caveat). Experiments: " + ", ".join(NAMES) + ". "
        "Rerun the same command to resume an interrupted one.",
        formatter_class=HelpFormatter,
    )
    # Checked in run() (not by argparse choices) so a bad name is a one-line error.
    parser.add_argument("name", metavar="NAME", help="an experiment, or all")
    parser.add_argument("--scale", default="small", help="small (2-core CPU, < 30 min for all) or paper (d=256, T=256, batch 512; for a GPU)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs, the results table and claims.json")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default: 3)")
    parser.add_argument("--workers", type=int, default=None, help="parallel training processes (default: 2 on cpu, 1 otherwise)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def run(args) -> int:
    from birthlens.errors import BirthlensError
    from birthlens.experiments.claims import format_table
    from birthlens.experiments.runner import expand, run_experiments
    from birthlens.experiments.scales import get_scale

    names = expand([args.name])  # validate before anything heavy
    get_scale(args.scale)
    if args.workers is not None and args.workers < 1:
        raise BirthlensError(f"--workers {args.workers}: need at least one")
    if args.threads < 1:
        raise BirthlensError(f"--threads {args.threads}: need at least one")
    workers = args.workers if args.workers is not None else (2 if str(args.device) == "cpu" else 1)
    claims = run_experiments(names, scale=args.scale, out=args.out, seeds=args.seeds, workers=workers,
                             device=args.device, threads=args.threads, quiet=args.quiet)
    print(format_table(claims))
    print(f"claims table: {args.out / 'claims.json'}; runs table: {args.out / 'runs' / 'results.csv'}")
    return 0
