"""Claim 5: previous-token heads low, induction heads higher, in a pretrained LM.

    claim = pretrained_claim("smollm2-135m")      # a Claim row, "not measured" if it cannot load

Scores every head on repeated random sequences ([BOS] A A) with the toolkit's own
attention probes, takes the strongest heads of each kind, and hands their layers to
``verdicts.pretrained_verdict``. The induction loss (first vs second copy) says whether
the model actually uses what those heads find.
"""

from __future__ import annotations

from birthlens.errors import BirthlensError
from birthlens.experiments import verdicts as V
from birthlens.experiments.claims import Claim

TOP_N = 5
PROMPT_LENGTH = 50
N_PROMPTS = 16


def pretrained_claim(spec: str = "smollm2-135m", device: str = "cpu", scale: str = "", seed: int = 0) -> Claim:
    """The claims-table row for claim 5, measured on the model ``spec`` names."""
    import birthlens
    from birthlens.probes.attention import attention_scores
    from birthlens.probes.behaviour import induction_loss

    try:
        model = birthlens.load(spec, device=device)
    except BirthlensError as exc:
        return Claim("5", "pretrained", V.NOT_MEASURED, f"could not load {spec}", 1, str(exc), scale)
    scores = attention_scores(model, length=PROMPT_LENGTH, batch_size=N_PROMPTS, seed=seed)
    loss = induction_loss(model, length=PROMPT_LENGTH, batch_size=N_PROMPTS, seed=seed)
    prev_top = scores.prev_token.top(TOP_N)
    ind_top = scores.induction.top(TOP_N)
    verdict, note = V.pretrained_verdict(prev_top, ind_top)

    def heads(top):
        return ", ".join(f"L{layer}H{head} {score:.2f}" for layer, head, score in top)

    measured = (f"{spec} ({model.cfg.n_layers} layers x {model.cfg.n_heads} heads): top previous-token heads {heads(prev_top)}; "
                f"top induction heads {heads(ind_top)}; loss on the first / second copy of a repeated random "
                f"sequence {loss.first_half:.2f} / {loss.second_half:.2f} nats")
    figures = {
        "model": spec,
        "prev_token_top": [list(h) for h in prev_top],
        "induction_top": [list(h) for h in ind_top],
        "prev_token": scores.prev_token.to_dict(),
        "induction": scores.induction.to_dict(),
        "induction_loss": {"first_half": loss.first_half, "second_half": loss.second_half},
        "prompts": {"length": PROMPT_LENGTH, "n": N_PROMPTS, "seed": seed},
    }
    note += f"; one model, one prompt seed: {N_PROMPTS} prompts [BOS] A A with |A| = {PROMPT_LENGTH}"
    return Claim("5", "pretrained", verdict, measured, 1, note, scale, figures=figures)
