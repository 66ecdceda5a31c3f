"""What the report knows about one model: plain, JSON-ready data, live or from saved JSON.

    entry = describe_model(birthlens.load("smollm2-135m"), "smollm2-135m")   # probes it
    entry = ModelEntry.from_probe_json(json.load(open("probe.json")))          # no model needed
    entry.ablation = json.load(open("ablation.json"))

A live model gives more than a probe JSON can hold: its shape, the attention patterns
of its strongest heads on an example (with the example's tokens), and the
K-composition between its strongest previous-token and induction heads. Every field
beyond ``probe`` is optional; the report leaves out what is missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from birthlens.errors import BirthlensError

# Our own words, repeated: induction heads light up on the second copy.
EXAMPLE_TEXT = "The old lighthouse keeper counted seven ships before the storm reached the harbour."
EXAMPLE_TOY_LENGTH = 40
N_COMPOSITION_HEADS = 5
PROBE_KEYS = ("model", "n_layers", "n_heads", "scores")


def head_name(head) -> str:
    """[17, 3] -> "L17H3" (layers and heads counted from 0, as in TransformerLens)."""
    return f"L{int(head[0])}H{int(head[1])}" if head is not None else "—"


@dataclass
class ModelEntry:
    name: str
    probe: dict  # ProbeSuiteResult.to_dict()
    info: dict = field(default_factory=dict)  # kind, shape, parameter count (live models)
    example: dict | None = None  # {"text", "tokens", "patterns": {role: {"head", "pattern"}}}
    composition: dict | None = None  # {"rows", "cols", "K"}: strongest P heads -> strongest I heads
    ablation: dict | None = None  # an ablation JSON, as written by `birthlens ablate --json`
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelEntry":
        return cls(**data)

    @classmethod
    def from_probe_json(cls, data: dict, source: str = "") -> "ModelEntry":
        """An entry from what `birthlens probe --json` wrote."""
        missing = [key for key in PROBE_KEYS if key not in data]
        if missing:
            raise BirthlensError(f"{source or 'probe JSON'} is not a probe result (missing {', '.join(missing)})")
        info = {"n_layers": data["n_layers"], "n_heads": data["n_heads"]}
        return cls(name=str(data["model"]), probe=data, info=info, source=source)

    @property
    def n_layers(self) -> int:
        return int(self.probe["n_layers"])

    @property
    def n_heads(self) -> int:
        return int(self.probe["n_heads"])

    def top_head(self, score: str) -> tuple[int, int, float] | None:
        """The strongest head for a score as (layer, head, value)."""
        tops = (self.probe.get("top") or {}).get(score)
        if tops:
            layer, head, value = tops[0]
            return int(layer), int(head), value
        rows = (self.probe.get("scores") or {}).get(score)
        best = None
        for layer, row in enumerate(rows or []):
            for head, value in enumerate(row):
                if value is not None and (best is None or value > best[2]):
                    best = (layer, head, value)
        return best


def model_info(model) -> dict:
    """Shape and size of a live HookedTransformer, for the summary."""
    cfg = model.cfg
    checkpoint = getattr(model, "birthlens_checkpoint", None)
    kind = "toy checkpoint" if checkpoint else ("pretrained LM" if getattr(model, "tokenizer", None) is not None else "model")
    info = {
        "kind": kind,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "d_model": cfg.d_model,
        "d_head": cfg.d_head,
        "d_vocab": cfg.d_vocab,
        "n_ctx": cfg.n_ctx,
        "positional": cfg.positional_embedding_type,
        "attn_only": bool(cfg.attn_only),
        "n_params": int(sum(p.numel() for p in model.parameters())),
    }
    if checkpoint:
        info["step"] = checkpoint["step"]
    return info


# ---- the example the attention patterns are drawn on -----------------------------


def example_tokens(model, task_config=None):
    """(tokens (1, n), their strings, the text) for drawing attention patterns.

    A model with a tokenizer reads a sentence twice; the toy reads a sequence of its
    own bigram-trigger task (its triggers recur, so the induction head has work).
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        text = f"{EXAMPLE_TEXT} {EXAMPLE_TEXT}"
        tokens = model.to_tokens(text)[:, : model.cfg.n_ctx]
        return tokens, [str(t) for t in model.to_str_tokens(tokens[0])], text
    from birthlens.datasets.bigram_task import BigramTask, TaskConfig
    from birthlens.datasets.corpus import default_stats

    stats = default_stats()
    n = min(EXAMPLE_TOY_LENGTH, model.cfg.n_ctx)
    if model.cfg.d_vocab == stats.size:
        config = task_config or TaskConfig(seq_len=max(n, 2))
        if config.seq_len < n:
            config = TaskConfig(**{**config.to_dict(), "seq_len": n})
        tokens = BigramTask(config).sample(1, seed=0).inputs[:, :n]
        strings = [stats.vocab[int(t)] for t in tokens[0]]
        return tokens, strings, "".join(strings)
    # A model we know nothing about: a repeated random sequence, labelled by id.
    from birthlens.probes.prompts import repeated_prompts

    tokens = repeated_prompts(model, length=min(16, n // 2), batch_size=1, seed=0, bos=None).cpu()
    strings = [f"#{int(t)}" for t in tokens[0]]
    return tokens, strings, " ".join(strings)


def attention_patterns(model, tokens, heads: dict) -> dict:
    """role -> {"head": [layer, head], "pattern": query x key weights} on one sequence."""
    import torch

    from birthlens.probes.prompts import model_device

    layers = {layer for layer, _ in heads.values()}
    names = {f"blocks.{layer}.attn.hook_pattern" for layer in layers}
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens.to(model_device(model)), names_filter=lambda name: name in names)
    out = {}
    for role, (layer, head) in heads.items():
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0, head].float().cpu()
        out[role] = {"head": [layer, head], "pattern": [[round(float(v), 4) for v in row] for row in pattern]}
    return out


def composition_block(result, n: int = N_COMPOSITION_HEADS) -> dict | None:
    """K-composition from the n strongest previous-token heads to the n strongest induction
    heads, keeping only the earlier heads that precede some later head and vice versa."""
    if result.composition is None:
        return None
    prev = [tuple(t[:2]) for t in result.top(n, "prev_token")]
    ind = [tuple(t[:2]) for t in result.top(n, "induction")]
    if not prev or not ind:
        return None
    rows = [p for p in prev if p[0] < max(i[0] for i in ind)]
    cols = [i for i in ind if i[0] > min(p[0] for p in prev)]
    if not rows or not cols:
        return None
    k = result.composition.k
    matrix = [[round(float(k[p + i]), 4) if p[0] < i[0] else None for i in cols] for p in rows]
    return {"rows": [list(h) for h in rows], "cols": [list(h) for h in cols], "K": matrix}


def describe_model(model, name: str, *, result=None, task_config=None, source: str = "", **probe_kwargs) -> ModelEntry:
    """Probe a live model (or reuse ``result``) and collect what the report draws.

        entry = describe_model(toy, "quick@400", task_config=config.task)
        entry = describe_model(smollm2, "smollm2-135m", result=probe_all(smollm2))
    """
    from birthlens.probes.suite import probe_all

    if result is None:
        result = probe_all(model, name=name, **probe_kwargs)
    probe = result.to_dict()
    entry = ModelEntry(name=name, probe=probe, info=model_info(model), source=source)
    prev_head = result.memory.prev_head or tuple(result.top(1, "prev_token")[0][:2])
    heads = {"prev_token": tuple(prev_head), "induction": tuple(result.memory.induction_head)}
    tokens, strings, text = example_tokens(model, task_config)
    entry.example = {"text": text, "tokens": strings, "patterns": attention_patterns(model, tokens, heads)}
    entry.composition = composition_block(result)
    return entry
