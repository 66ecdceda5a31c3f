"""Shared fixtures. Slow tests (marked ``slow``) run only with ``--runslow``."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def smollm2():
    """The offline SmolLM2-135M HookedTransformer, loaded once per test session."""
    import birthlens

    return birthlens.load("smollm2-135m")


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """A run folder of the quick preset, trained once per test session (about a minute)."""
    from birthlens.models.training import preset, train

    out = tmp_path_factory.mktemp("quick") / "run"
    train(preset("quick"), out, quiet=True)
    return out
