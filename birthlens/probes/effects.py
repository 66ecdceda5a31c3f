"""Tables of intervention effects laid out by site: (n_layers, n_heads) for heads, (n_layers,)
for layer outputs and residual streams, with a trailing position axis when per position.

    shape = table_shape(model, "head")            # (30, 9) on SmolLM2
    ranked(importance, n=3)                      # [(17, 4), (18, 1), ...] indices, largest first
    entry_name("head", (17, 4))                  # "17.4"; ("mlp_out", (3,)) -> "mlp.3"

Shared by the ablation and patching sweeps so both rank and name their entries alike.
"""

from __future__ import annotations

from typing import Iterable

import torch

from birthlens.errors import BirthlensError
from birthlens.probes.components import LAYER_RANGE_ERR, Component, check_site, site_components

TABLE_SITES = ("head", "attn_out", "mlp_out", "resid_pre")
TABLE_SITE_ERR = "a sweep covers one of " + ", ".join(TABLE_SITES) + "; got {site!r}"


def check_table_site(site: str) -> str:
    check_site(site)
    if site not in TABLE_SITES:
        raise BirthlensError(TABLE_SITE_ERR.format(site=site))
    return site


def table_shape(model, site: str) -> tuple[int, ...]:
    check_table_site(site)
    return (model.cfg.n_layers, model.cfg.n_heads) if site == "head" else (model.cfg.n_layers,)


def table_components(model, site: str, layers: Iterable[int] | None = None) -> list[Component]:
    """The site's components in row-major order of its table, optionally only in ``layers``."""
    components = site_components(model, check_table_site(site))
    if layers is None:
        return components
    n_layers = model.cfg.n_layers
    wanted = set()
    for layer in layers:
        if not -n_layers <= int(layer) < n_layers:
            raise BirthlensError(LAYER_RANGE_ERR.format(layer=layer, n_layers=n_layers))
        wanted.add(int(layer) % n_layers)
    return [c for c in components if c.layer in wanted]


def fill_table(model, site: str, components: list[Component], values: torch.Tensor) -> torch.Tensor:
    """The site's table with ``values`` (one row per component, any trailing axes) in place, NaN elsewhere."""
    shape = table_shape(model, site)
    table = torch.full((*shape, *values.shape[1:]), float("nan"), dtype=values.dtype)
    for component, value in zip(components, values):
        table[(component.layer, component.head) if site == "head" else component.layer] = value
    return table


def entry_name(site: str, index: tuple[int, ...]) -> str:
    """The component name of a table entry (its position, if any, is not part of the name)."""
    if site == "head":
        return str(Component("head", index[0], index[1]))
    return str(Component(site, index[0]))


def ranked(importance: torch.Tensor, n: int) -> list[tuple[int, ...]]:
    """Indices of the ``n`` largest entries, largest first; NaN entries are skipped."""
    flat = importance.flatten()
    measured = torch.nonzero(~torch.isnan(flat)).flatten()
    order = flat[measured].argsort(descending=True, stable=True)[: max(n, 0)]
    return [tuple(int(i) for i in torch.unravel_index(index, importance.shape)) for index in measured[order]]
