"""`birthlens report INPUT... --out FILE.html`: one self-contained HTML page from runs, JSON and models."""

from __future__ import annotations

from pathlib import Path

from birthlens.commands import HelpFormatter
from birthlens.errors import BirthlensError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="one self-contained HTML report from runs, probe/ablation JSON and models",
        description="Write one HTML file (inline CSS, embedded figures, no scripts, opens offline) from any "
        "mix of inputs: a training run folder (its checkpoints are probed over training: the birth of "
        "the induction head), a probe JSON (birthlens probe --json), an ablation JSON (birthlens ablate "
        "--json; attached to the model it names), a report bundle (report.json from birthlens demo), or a "
        "model spec (probed now: runs/quick@40, smollm2-135m, a .gguf file, ...). Several models get a "
        "side-by-side comparison.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="run folder, probe/ablation JSON, report bundle or model spec")
    parser.add_argument("--out", required=True, type=Path, help="the HTML file to write")
    parser.add_argument("--title", default=None, help="page title (default: from the inputs)")
    parser.add_argument("--max-checkpoints", type=int, default=None, help="probe at most this many checkpoints of a run, spread evenly (default: all)")
    parser.add_argument("--bundle", type=Path, default=None, metavar="JSON", help="also save everything the report shows as JSON (re-render it with `birthlens report JSON`)")
    parser.add_argument("--device", default="cpu", help="torch device for models probed on the fly")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _check_folder(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BirthlensError(f"cannot write {path}: folder {folder} does not exist")


def run(args) -> int:
    import json

    from birthlens.reports import bundle, gather, write_report

    if args.max_checkpoints is not None and args.max_checkpoints < 2:
        raise BirthlensError(f"--max-checkpoints must be at least 2, got {args.max_checkpoints}")
    _check_folder(args.out)
    if args.bundle is not None:
        _check_folder(args.bundle)
    data = gather(args.inputs, device=args.device, quiet=args.quiet, max_checkpoints=args.max_checkpoints, title=args.title)
    write_report(data, args.out)
    if args.bundle is not None:
        args.bundle.write_text(json.dumps(bundle(data), allow_nan=False) + "\n")
        print(f"wrote {args.bundle}")
    print(f"wrote {args.out}")
    return 0
