"""`birthlens probe SPEC`: run the probe suite on any model and print (and save) the results."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from birthlens.commands import HelpFormatter
from birthlens.errors import BirthlensError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="attention scores, induction loss, memory recall and composition of a model",
        description="Probe a model: previous-token, induction and duplicate-token scores per head, "
        "induction loss on [BOS] A A, memory recall (OV, QK, positional, feed-forward), composition "
        "scores, and for toy models the synthetic task's metrics. SPEC is anything birthlens.load "
        "accepts: a run folder (runs/quick, runs/quick@400), a checkpoint, smollm2-135m, a .gguf file, "
        "a Hugging Face folder or a TransformerLens name.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("spec", help="the model to probe")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write every result as JSON to OUT")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--length", type=int, default=None, help="length of the random sequence A in [BOS] A A (default: 50, or what fits the context)")
    parser.add_argument("--batch-size", type=int, default=8, help="number of [BOS] A A sequences")
    parser.add_argument("--seed", type=int, default=0, help="seed for the prompts and token samples")
    parser.add_argument("--exclude-bos", action="store_true", help="leave attention to the first position out of the scores")
    parser.add_argument("--n-tokens", type=int, default=512, help="token sample size for memory recall on large vocabularies")
    parser.add_argument("--top", type=int, default=3, help="how many heads to list per score")
    parser.add_argument("--no-composition", action="store_true", help="skip composition scores")
    parser.set_defaults(func=run)


def _load(spec: str, device: str):
    import birthlens

    return birthlens.load(spec, device=device)


def _run_task(spec: str):
    """The task a training run was trained on, so its probes match its data; else "auto"."""
    text = re.sub(r"@\d+$", "", spec.strip())
    path = Path(text).expanduser()
    if path.is_file() and path.parent.name == "checkpoints":
        path = path.parent.parent
    if not (path / "config.json").is_file() or not (path / "checkpoints").is_dir():
        return "auto"
    try:
        from birthlens.models.training import Run

        config = Run(path).read_config()
    except (ImportError, BirthlensError):
        return "auto"
    return config.task


def write_json(payload: dict, out: Path) -> None:
    """Write atomically: a crash never leaves half a JSON file behind."""
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BirthlensError(f"cannot write {out}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=out.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1, allow_nan=False)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args) -> int:
    from birthlens.probes.suite import probe_all

    for flag in ("length", "batch_size", "n_tokens", "top"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise BirthlensError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.json is not None and not (args.json.parent if str(args.json.parent) else Path(".")).is_dir():
        raise BirthlensError(f"cannot write {args.json}: folder {args.json.parent} does not exist")
    model = _load(args.spec, args.device)
    result = probe_all(
        model,
        name=args.spec,
        length=args.length,
        batch_size=args.batch_size,
        seed=args.seed,
        exclude_bos=args.exclude_bos,
        n_tokens=args.n_tokens,
        composition=not args.no_composition,
        task=_run_task(args.spec),
    )
    print(result.summary(n=args.top))
    if args.json is not None:
        write_json(result.to_dict(), args.json)
        print(f"wrote {args.json}")
    return 0
