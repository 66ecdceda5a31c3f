"""The claims table: one row per claim of PAPER.md section 5, as measured, in a JSON file.

    claims = load_claims(Path("exp-out/claims.json"))
    for c in claims:
        print(c.id, c.verdict, c.measured)

``claims.json`` is what reports read:

    {"format_version": 1, "scale": "small", "seeds": 3, "device": "cpu", "workers": 2, "updated": "...",
     "invocations": [{"started": "...", "experiments": [...], "wall_s": 2048.0, "trained": 33, "skipped": 0}, ...],
     "claims": [{"id": "1", "claim": "...", "experiment": "global-first",
                 "verdict": "holds" | "does not hold" | "holds with caveat" | "not measured",
                 "measured": "one line of figures", "n_seeds": 3, "note": "...",
                 "scale": "small", "figures": {...structured numbers...}}, ...]}

Writing merges by claim id, so running one experiment updates its row and keeps the rest.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from birthlens.errors import BirthlensError
from birthlens.experiments.verdicts import VERDICTS

CLAIMS_FILE = "claims.json"
FORMAT_VERSION = 1

# The claims of PAPER.md section 5 (2b is our freezing test of claim 2), in our words.
CLAIM_TEXT = {
    "1": "Global statistics are learned first: the bigram loss settles before in-context accuracy rises.",
    "2": "Learning is top-down: W_O^2 becomes a good memory first, then W_K^2, then W_K^1.",
    "2b": "Freezing test of the top-down order: W_O^2 forms without W_K^1, and the key memories "
    "(W_K^2, W_K^1) wait for W_O^2.",
    "3": "The output memory W_O^2 forms while layer-2 attention is still near uniform; attention sharpens afterwards.",
    "4": "The data distribution (number of triggers, fixed vs random triggers, output distribution) changes how fast "
    "in-context learning appears and whether it generalises to unseen outputs.",
    "5": "Pretrained language models have the same two heads: previous-token heads in earlier layers, induction heads later.",
}
CLAIM_ORDER = ("1", "2", "2b", "3", "4", "5")


@dataclass
class Claim:
    """One row of the claims table."""

    id: str
    experiment: str
    verdict: str
    measured: str
    n_seeds: int
    note: str = ""
    scale: str = ""
    claim: str = ""
    figures: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.claim:
            self.claim = CLAIM_TEXT.get(self.id, "")
        if self.verdict not in VERDICTS:
            raise BirthlensError(f"claim {self.id}: verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Claim":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _order(claim: Claim) -> tuple:
    return (CLAIM_ORDER.index(claim.id) if claim.id in CLAIM_ORDER else len(CLAIM_ORDER), claim.id)


def write_claims(path: Path, claims: list[Claim], invocation: dict | None = None, **meta) -> list[Claim]:
    """Merge ``claims`` into ``path`` by id (new rows win) and write it atomically.

    ``meta`` (scale, seeds, device, ...) goes to the top level of the file; ``invocation``
    (what one command did: wall_s, runs trained / skipped) is appended to the file's
    ``invocations`` list, so a rerun that only re-measures keeps the first run's time.
    Returns every claim now in the file, in table order.
    """
    path = Path(path)
    merged = {c.id: c for c in (load_claims(path) if path.is_file() else [])}
    merged.update({c.id: c for c in claims})
    rows = sorted(merged.values(), key=_order)
    invocations = json.loads(path.read_text()).get("invocations", []) if path.is_file() else []
    if invocation is not None:
        invocations.append(invocation)
    document = {
        "format_version": FORMAT_VERSION,
        **meta,
        "invocations": invocations,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "claims": [c.to_dict() for c in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(tmp, path)
    return rows


def load_claims(path: Path) -> list[Claim]:
    """The claims of a ``claims.json`` (a file or the experiment folder holding one), in table order."""
    path = Path(path)
    if path.is_dir():
        path = path / CLAIMS_FILE
    try:
        document = json.loads(path.read_text())
        rows = document["claims"]
        return sorted((Claim.from_dict(row) for row in rows), key=_order)
    except FileNotFoundError as exc:
        raise BirthlensError(f"no claims file at {path}; run `birthlens experiment all` first") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BirthlensError(f"{path} is not a birthlens claims file ({type(exc).__name__}: {exc})") from exc


def load_claims_document(path: Path) -> dict:
    """The whole claims file (with its scale, seeds and wall time), claims as dicts."""
    path = Path(path)
    if path.is_dir():
        path = path / CLAIMS_FILE
    claims = load_claims(path)
    document = json.loads(path.read_text())
    document["claims"] = [c.to_dict() for c in claims]
    return document


def format_table(claims: list[Claim]) -> str:
    """A plain-text claims table for the terminal."""
    lines = []
    for c in claims:
        lines.append(f"[{c.id}] {c.verdict.upper()}  ({c.experiment}, n_seeds={c.n_seeds}, scale={c.scale})")
        lines.append(f"    claim:    {c.claim}")
        lines.append(f"    measured: {c.measured}")
        if c.note:
            lines.append(f"    note:     {c.note}")
    return "\n".join(lines)
