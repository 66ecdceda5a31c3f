"""`birthlens demo --out DIR`: train the toy, probe it over training, set SmolLM2 beside it, write a report."""

from __future__ import annotations

from pathlib import Path

from birthlens.commands import HelpFormatter


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job: train the toy, watch its induction head form, compare with SmolLM2",
        description="Train the quick toy model, probe every checkpoint (the birth of its induction head), "
        "load SmolLM2-135M offline, probe and ablate both, and write DIR/report.html (plus DIR/report.json, "
        "which `birthlens report` re-renders). Under 10 minutes on 2 CPU cores. Running it again into the "
        "same DIR reuses the trained run.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder")
    parser.add_argument("--llm", default="smollm2-135m", help="the model to set beside the toy (any birthlens.load spec); 'none' leaves it out")
    parser.add_argument("--quick", action="store_true", help="a tiny toy and short prompts: seconds, for tests and a first look")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from birthlens.reports.demo import run_demo

    llm = None if args.llm.lower() == "none" else args.llm
    result = run_demo(args.out, quick=args.quick, llm=llm, device=args.device, quiet=args.quiet)
    print(f"report: {result.report}")
    for line in result.summary:
        print(f"  {line}")
    print(f"({sum(result.timings.values()):.0f} s; the report's data: {result.bundle})")
    return 0
