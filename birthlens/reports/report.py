"""Gather report inputs (run folders, probe JSON, ablation JSON, model specs) into a ReportData.

    data = gather(["runs/quick", "smollm2.json", "ablate-smollm2.json"])
    write_report(data, Path("report.html"))

How each input is read:
- a training run folder: its checkpoints probed over training (the birth), and its
  final checkpoint described in full;
- a JSON file: a probe result (``birthlens probe --json``), an ablation result
  (``birthlens ablate --json``: attached to the model of the same name, or to the only
  model), or a saved report bundle (``{"models": [...], "runs": [...]}``);
- anything else: a model spec for ``birthlens.load``, probed on the spot.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from birthlens.errors import BirthlensError
from birthlens.reports.ablation import find_results
from birthlens.reports.birth import Birth, probe_run
from birthlens.reports.entries import ModelEntry, describe_model
from birthlens.reports.sections import ReportData

NOT_JSON_ERR = "{path} is not a JSON file birthlens can read ({why})"
UNKNOWN_JSON_ERR = (
    "{path}: unknown JSON: expected a probe result (with 'scores' and 'n_layers'), an ablation "
    "or patching result (with 'baseline' and 'ablated', or 'clean', 'corrupted' and 'patched'), "
    "or a report bundle (with 'models')"
)


def json_kind(data) -> str | None:
    """"probe", "ablation", "bundle", "claims" or None for an unknown document."""
    if not isinstance(data, dict):
        return None
    if "scores" in data and "n_layers" in data:
        return "probe"
    if isinstance(data.get("models"), list) or isinstance(data.get("runs"), list):
        return "bundle"  # before ablation: a bundle holds ablation results inside its models
    if "claims" in data:
        return "claims"
    if find_results(data):
        return "ablation"
    return None


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BirthlensError(NOT_JSON_ERR.format(path=path, why=exc)) from exc


def _same_model(entry: ModelEntry, name: str) -> bool:
    """Does an ablation's ``model`` (the spec it ran on) name this entry? A run folder
    matches with or without its @STEP."""
    if name in (entry.name, entry.source):
        return True
    if not entry.source:
        return False
    try:
        return Path(re.sub(r"@\d+$", "", name)).expanduser().resolve() == Path(entry.source).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def attach_ablation(models: list[ModelEntry], ablation: dict, source: str, before: int) -> None:
    """Give an ablation/patching result to the model it names (``birthlens ablate --json``
    writes the spec it ran on); one that names none goes to the model given just before it
    on the command line (or the first one, if it came first)."""
    if not models:
        raise BirthlensError(f"{source}: an ablation or patching result needs its model (run folder, spec or probe JSON) in the same report")
    name = ablation.get("model")
    if isinstance(name, str):
        matches = [m for m in models if _same_model(m, name)]
        if not matches:
            known = ", ".join(m.name for m in models)
            raise BirthlensError(
                f"{source}: its model {name!r} is none of this report's models ({known}); "
                "give that model's run folder, spec or probe JSON too"
            )
        target = matches[-1]
    else:
        target = models[max(before - 1, 0)]
    if target.ablation is None:
        target.ablation = ablation
    else:  # several results for one model: keep them all, in order
        target.ablation = {"results": [*(target.ablation.get("results") or [target.ablation]), ablation]}


def run_task(spec: str):
    """The TaskConfig a run checkpoint was trained on (``runs/quick@40``, a checkpoint
    file inside a run), so its probes use its own data; None for anything else."""
    from birthlens.models.loading import is_run_folder
    from birthlens.models.training import Run

    path = Path(re.sub(r"@\d+$", "", spec.strip())).expanduser()
    if path.is_file() and path.parent.name == "checkpoints":
        path = path.parent.parent
    if not (path.is_dir() and is_run_folder(path)):
        return None
    try:
        return Run(path).read_config().task
    except BirthlensError:
        return None


def gather(
    inputs: list[str],
    *,
    device: str = "cpu",
    quiet: bool = False,
    max_checkpoints: int | None = None,
    title: str | None = None,
    probe_args: dict | None = None,
) -> ReportData:
    """Read every input in order into one ReportData (ablations after their model)."""
    from birthlens.models.loading import is_run_folder

    if not inputs:
        raise BirthlensError("give at least one input: a run folder, a probe or ablation JSON, or a model spec")
    data = ReportData(title=title or "birthlens report")
    ablations: list[tuple[dict, str, int]] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir() and is_run_folder(path):
            add_run(data, path, device=device, quiet=quiet, max_checkpoints=max_checkpoints)
        elif path.is_file() and path.suffix.lower() == ".json":
            document = read_json(path)
            kind = json_kind(document)
            if kind == "probe":
                data.models.append(ModelEntry.from_probe_json(document, source=str(path)))
            elif kind == "ablation":
                ablations.append((document, str(path), len(data.models)))
            elif kind == "bundle":
                add_bundle(data, document)
            elif kind == "claims":
                data.claims = document
            else:
                raise BirthlensError(UNKNOWN_JSON_ERR.format(path=path))
        else:
            add_spec(data, text, device=device, probe_args=probe_args)
    for document, source, before in ablations:
        attach_ablation(data.models, document, source, before)
    if title is None and len(data.models) + len(data.runs) == 1:
        data.title = f"birthlens report: {(data.models or data.runs)[0].name}"
    return data


def add_run(data: ReportData, run_dir: Path, *, device: str = "cpu", quiet: bool = False, max_checkpoints: int | None = None) -> Birth:
    """The birth curves of a run, plus its final checkpoint as a model entry."""
    from birthlens.models.checkpoints import list_checkpoints, load_checkpoint_model
    from birthlens.models.training import Run

    birth = probe_run(run_dir, max_checkpoints=max_checkpoints, device=device, quiet=quiet)
    data.runs.append(birth)
    last, path = list(list_checkpoints(run_dir).items())[-1]
    model = load_checkpoint_model(path, device=device)
    config = Run(run_dir).read_config()
    entry = describe_model(model, f"{birth.name}@{last}", result=birth.final_result, task_config=config.task, source=str(run_dir))
    data.models.append(entry)
    return birth


def add_spec(data: ReportData, spec: str, *, device: str = "cpu", probe_args: dict | None = None) -> ModelEntry:
    """Load a model spec and describe it (a run checkpoint keeps its own task)."""
    import birthlens

    model = birthlens.load(spec, device=device)
    task = run_task(spec)
    kwargs = dict(probe_args or {})
    kwargs.setdefault("task", task or "auto")
    entry = describe_model(model, spec, task_config=task, source=spec, **kwargs)
    data.models.append(entry)
    return entry


def add_bundle(data: ReportData, bundle: dict) -> None:
    """A saved ReportData (see ``bundle``): models, runs and the comparison-only entries."""
    try:
        data.models += [ModelEntry.from_dict(m) for m in bundle.get("models", [])]
        data.compare_only += [ModelEntry.from_dict(m) for m in bundle.get("compare_only", [])]
        data.runs += [Birth.from_dict(r) for r in bundle.get("runs", [])]
    except (TypeError, KeyError) as exc:
        raise BirthlensError(f"report bundle is malformed ({type(exc).__name__}: {exc})") from exc
    if bundle.get("claims") is not None:
        data.claims = bundle["claims"]
    data.notes += [str(n) for n in bundle.get("notes", [])]


def bundle(data: ReportData) -> dict:
    """Everything a report was drawn from, as JSON: `birthlens report bundle.json` redraws it."""
    return {
        "title": data.title,
        "models": [m.to_dict() for m in data.models],
        "compare_only": [m.to_dict() for m in data.compare_only],
        "runs": [r.to_dict() for r in data.runs],
        "claims": data.claims,
        "notes": data.notes,
    }
