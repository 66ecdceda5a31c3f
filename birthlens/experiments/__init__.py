"""Experiments that measure the paper's claims: sweeps, recordings, verdicts, a claims table.

    from birthlens.experiments import run_experiments, load_claims
    run_experiments(["top-down"], scale="small", out=Path("runs/exp"))
    for claim in load_claims(Path("runs/exp")):
        print(claim.id, claim.verdict, claim.measured)

Modules, one idea each: ``sweep`` (configs x seeds in parallel, one table), ``recording``
(memory recall and attention entropy per checkpoint), ``curves`` (when a curve crosses a
line), ``verdicts`` (the rules), ``catalog`` (the experiments), ``scales`` (small and
paper sizes), ``pretrained`` (claim 5 on SmolLM2), ``claims`` (the table file), ``runner``.
"""

# Imported lazily: reading a claims file (as reports do) needs neither torch nor
# TransformerLens.
_EXPORTS = {
    "CLAIMS_FILE": "claims",
    "Claim": "claims",
    "load_claims": "claims",
    "load_claims_document": "claims",
    "run_experiments": "runner",
    "RunSpec": "sweep",
    "grid": "sweep",
    "read_table": "sweep",
    "run_sweep": "sweep",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'birthlens.experiments' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"birthlens.experiments.{_EXPORTS[name]}"), name)
