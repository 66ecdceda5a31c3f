"""Names of the parts of a model that ablation and patching act on, and where to hook them.

    parse_components(model, "1.0,0.3,mlp.2")   # [Component("head", 1, 0), Component("head", 0, 3), Component("mlp_out", 2)]
    str(Component("head", 1, 0))              # "1.0"
    Component("attn_out", 3).hook_name         # "blocks.3.hook_attn_out"

A head is its slice of ``hook_z`` (batch, pos, head, d_head): one per query head, so
grouped-query models (SmolLM2) are covered without touching their shared keys and values.
Layer outputs are ``hook_attn_out`` / ``hook_mlp_out``; ``resid.L`` is the residual stream
entering block L and ``embed`` the token embedding.
"""

from __future__ import annotations

import re
from typing import Iterable, Literal, NamedTuple, get_args

from birthlens.errors import BirthlensError
from birthlens.probes.heads import check_head

Site = Literal["head", "attn_out", "mlp_out", "resid_pre", "embed"]
SITES: tuple[str, ...] = get_args(Site)

# The layer of the embedding: it comes before block 0.
EMBED_LAYER = -1

COMPONENT_FORMAT_ERR = (
    "cannot read component {text!r}: write a head as LAYER.HEAD (e.g. 1.0), a layer output as "
    "attn.LAYER or mlp.LAYER, the residual stream entering a block as resid.LAYER, or embed"
)
LAYER_RANGE_ERR = "layer {layer} is out of range: the model has {n_layers} layers"
NO_MLP_ERR = "the model has no MLP layers (attention only), so {component} does not exist"
NO_COMPONENTS_ERR = "no components given: name at least one, e.g. 1.0 or mlp.3"
UNKNOWN_SITE_ERR = "unknown site {site!r}; choose one of " + ", ".join(SITES)

_PREFIXES = {"attn": "attn_out", "mlp": "mlp_out", "resid": "resid_pre"}
_HOOKS = {"attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out", "resid_pre": "hook_resid_pre"}


class Component(NamedTuple):
    """One place to intervene: a head's output, a layer's output, a residual stream, the embedding."""

    site: str
    layer: int = EMBED_LAYER
    head: int | None = None

    @property
    def hook_name(self) -> str:
        if self.site == "embed":
            return "hook_embed"
        if self.site == "head":
            return f"blocks.{self.layer}.attn.hook_z"
        return f"blocks.{self.layer}.{_HOOKS[self.site]}"

    def __str__(self) -> str:
        if self.site == "embed":
            return "embed"
        if self.site == "head":
            return f"{self.layer}.{self.head}"
        prefix = next(p for p, s in _PREFIXES.items() if s == self.site)
        return f"{prefix}.{self.layer}"


def check_site(site: str) -> str:
    if site not in SITES:
        raise BirthlensError(UNKNOWN_SITE_ERR.format(site=site))
    return site


def _check_layer(model, component: Component) -> Component:
    n_layers = model.cfg.n_layers
    if not -n_layers <= component.layer < n_layers:
        raise BirthlensError(LAYER_RANGE_ERR.format(layer=component.layer, n_layers=n_layers))
    component = component._replace(layer=component.layer % n_layers)
    if component.site == "mlp_out" and model.cfg.attn_only:
        raise BirthlensError(NO_MLP_ERR.format(component=component))
    return component


def parse_component(model, item) -> Component:
    """A Component from "L.H", "attn.L", "mlp.L", "resid.L", "embed", a (layer, head) pair or a Component."""
    if isinstance(item, Component):
        if item.site == "head":
            return Component("head", *check_head(model, (item.layer, item.head)))
        check_site(item.site)
        return item if item.site == "embed" else _check_layer(model, item)
    if not isinstance(item, str):
        return Component("head", *check_head(model, item))
    text = item.strip()
    if text == "embed":
        return Component("embed")
    head = re.fullmatch(r"(-?\d+)\.(-?\d+)", text)
    if head:
        return Component("head", *check_head(model, (int(head[1]), int(head[2]))))
    layer = re.fullmatch(r"(attn|mlp|resid)\.(-?\d+)", text)
    if layer:
        return _check_layer(model, Component(_PREFIXES[layer[1]], int(layer[2])))
    raise BirthlensError(COMPONENT_FORMAT_ERR.format(text=item))


def parse_components(model, items: str | Iterable) -> list[Component]:
    """Components from a comma-separated string or any iterable of parse_component inputs."""
    if isinstance(items, str):
        items = [part for part in items.split(",") if part.strip()] if items.strip() else []
        if not items:
            raise BirthlensError(NO_COMPONENTS_ERR)
    return [parse_component(model, item) for item in items]


def site_components(model, site: str) -> list[Component]:
    """Every component of one site, in layer (then head) order."""
    check_site(site)
    if site == "embed":
        return [Component("embed")]
    if site == "mlp_out" and model.cfg.attn_only:
        raise BirthlensError(NO_MLP_ERR.format(component="mlp.*"))
    if site == "head":
        return [Component("head", layer, h) for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    return [Component(site, layer) for layer in range(model.cfg.n_layers)]
