"""The paper's toy transformers, built as TransformerLens HookedTransformers.

    model = build_toy_model(ToyConfig(variant="simplified", d_model=256, n_ctx=256), seed=0)

"simplified" (PAPER.md section 3): two attention-only layers with one head each, width d,
no layer norm. W_Q is the identity; embeddings, unembeddings, positional embeddings,
W_V of both layers and W_O of layer 0 are random Gaussian and frozen; only W_K of both
layers and W_O of layer 1 learn (plus, optionally, a linear feed-forward after layer 1).

"full": any number of layers and heads, MLPs, layer norm, everything trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.utilities.activation_functions import SUPPORTED_ACTIVATIONS

from birthlens.errors import BirthlensError

Variant = Literal["simplified", "full"]
VARIANTS = ("simplified", "full")

# TransformerLens has no linear activation; the simplified model's optional feed-forward
# is linear, so it is an MLP whose activation is the identity.
SUPPORTED_ACTIVATIONS.setdefault("identity", lambda x: x)

# Parameters the simplified model learns; every other parameter is frozen.
SIMPLIFIED_TRAINABLE = ("blocks.0.attn.W_K", "blocks.1.attn.W_K", "blocks.1.attn.W_O")
FEED_FORWARD_TRAINABLE = ("blocks.1.mlp.W_out",)


@dataclass(frozen=True)
class ToyConfig:
    """Shape of a toy model (JSON-ready with ``asdict``)."""

    variant: str = "simplified"
    d_model: int = 256
    n_ctx: int = 256
    d_vocab: int = 65
    feed_forward: bool = False  # simplified only: linear feed-forward after layer 1
    # simplified only: divide attention scores by sqrt(d_head) as TransformerLens does by
    # default. The paper's model uses plain x_t^T W_K x_s, which sharpens much faster.
    scaled_attention: bool = False
    n_layers: int = 2  # full only (simplified is always 2 layers, 1 head)
    n_heads: int = 1  # full only
    d_mlp: int = 1024  # full only

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ToyConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BirthlensError(f"unknown model options {unknown}; known: {sorted(known)}")
        values = dict(values)
        # Configs written before the option existed described TransformerLens's scaled scores.
        values.setdefault("scaled_attention", True)
        return cls(**values)

    def check(self) -> None:
        if self.variant not in VARIANTS:
            raise BirthlensError(f"unknown model variant {self.variant!r}; choose simplified or full")
        for name in ("d_model", "n_ctx", "d_vocab", "n_layers", "n_heads", "d_mlp"):
            if getattr(self, name) < 1:
                raise BirthlensError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.variant == "full" and self.d_model % self.n_heads:
            raise BirthlensError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")


def hooked_config(config: ToyConfig) -> HookedTransformerConfig:
    """The TransformerLens config of a toy model."""
    config.check()
    if config.variant == "simplified":
        return HookedTransformerConfig(
            model_name="birthlens-toy-simplified",
            n_layers=2,
            n_heads=1,
            d_model=config.d_model,
            d_head=config.d_model,
            d_mlp=config.d_model if config.feed_forward else None,
            act_fn="identity" if config.feed_forward else None,
            attn_only=not config.feed_forward,
            n_ctx=config.n_ctx,
            d_vocab=config.d_vocab,
            normalization_type=None,
            positional_embedding_type="standard",
            default_prepend_bos=False,
            use_attn_scale=config.scaled_attention,
        )
    return HookedTransformerConfig(
        model_name="birthlens-toy-full",
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        d_model=config.d_model,
        d_head=config.d_model // config.n_heads,
        d_mlp=config.d_mlp,
        act_fn="gelu",
        n_ctx=config.n_ctx,
        d_vocab=config.d_vocab,
        normalization_type="LN",
        positional_embedding_type="standard",
        default_prepend_bos=False,
    )


def build_toy_model(config: ToyConfig, seed: int = 0, device: str | torch.device = "cpu") -> HookedTransformer:
    """A freshly initialised toy model; the same seed gives the same weights."""
    cfg = hooked_config(config)
    cfg.seed = seed  # TransformerLens seeds its own initialisation from this
    model = HookedTransformer(cfg)
    if config.variant == "simplified":
        _init_simplified(model, config, seed)
    return model.to(device, print_details=False)


def _init_simplified(model: HookedTransformer, config: ToyConfig, seed: int) -> None:
    d = config.d_model
    gen = torch.Generator().manual_seed(seed)

    def gaussian(*shape):
        # Entries N(0, 1/d): vectors of norm about 1, nearly orthogonal in high dimension.
        return torch.randn(*shape, generator=gen) / d**0.5

    trainable = set(SIMPLIFIED_TRAINABLE)
    if config.feed_forward:
        trainable |= set(FEED_FORWARD_TRAINABLE)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.zero_()  # biases and learned matrices start at zero (uniform attention, no output)
            param.requires_grad_(name in trainable)
        model.embed.W_E.copy_(gaussian(config.d_vocab, d))
        model.unembed.W_U.copy_(gaussian(d, config.d_vocab))
        model.pos_embed.W_pos.copy_(gaussian(config.n_ctx, d))
        identity = torch.eye(d).unsqueeze(0)
        for block in model.blocks:
            block.attn.W_Q.copy_(identity)
            block.attn.W_V.copy_(gaussian(1, d, d))
        model.blocks[0].attn.W_O.copy_(gaussian(1, d, d))
        if config.feed_forward:
            model.blocks[1].mlp.W_in.copy_(torch.eye(d))


def trainable_parameters(model: HookedTransformer) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def frozen_parameters(model: HookedTransformer) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if not p.requires_grad}
