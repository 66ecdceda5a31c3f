"""birthlens: watch an induction head being born, and probe any HookedTransformer.

    import birthlens
    model = birthlens.load("runs/quick")        # or "smollm2-135m", "gpt2", a .gguf file, ...
    result = birthlens.probe_all(model)
    print(result.top(3))
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "probe_all"]


def __getattr__(name):
    # Imported lazily: `import birthlens` stays fast and does not pull in torch
    # or TransformerLens until a model or probe is actually needed.
    if name == "load":
        from birthlens.models.loading import load

        return load
    if name == "probe_all":
        from birthlens.probes.suite import probe_all

        return probe_all
    raise AttributeError(f"module 'birthlens' has no attribute {name!r}")
