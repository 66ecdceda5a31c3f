"""Figures for the HTML report: seaborn/matplotlib drawn off-screen, embedded as base64 PNG.

    img = score_heatmaps({"prev_token": rows, "induction": rows, "duplicate_token": rows})
    img.src      # "data:image/png;base64,..." ready for <img src>
    img.width    # CSS pixels to show it at (the PNG has more, for sharp text)

Every function takes plain lists/arrays (what a probe JSON holds), never a model, so a
report from saved JSON and one from a live model draw the same pictures. Figures are
built on ``matplotlib.figure.Figure`` directly: no pyplot global state, no GUI backend.
Token strings go through ``token_label`` and ``parse_math=False``: a token such as
``$x$`` must be drawn as itself, not as mathtext.
"""

from __future__ import annotations

import base64
import io
import math
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # before seaborn imports pyplot: never a display

import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

# Pixels per inch of the PNG, and of the CSS size it is shown at: drawing at 1.5x the
# shown size keeps small tick labels sharp on high-density screens.
DPI = 150
CSS_DPI = 100
SCORE_TITLES = {
    "prev_token": "previous-token score",
    "induction": "induction score",
    "duplicate_token": "duplicate-token score",
}
PALETTE = sns.color_palette("tab10")


@dataclass(frozen=True)
class Image:
    """An embedded PNG: ``src`` is a data URI; ``width``/``height`` are CSS pixels."""

    src: str
    width: int
    height: int
    alt: str


def to_image(fig: Figure, alt: str) -> Image:
    """Render a figure to a PNG data URI (and let it go: figures are not reused)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Tokens in scripts DejaVu lacks (CJK, emoji) draw as boxes; a warning per glyph is noise.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    width, height = fig.get_size_inches() * CSS_DPI
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Image(f"data:image/png;base64,{data}", int(round(width)), int(round(height)), alt)


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def token_label(token: str, max_len: int = 12) -> str:
    """A tick label for a token: spaces and control characters made visible, long ones cut.

    >>> token_label(" the\\n")
    '·the\\\\n'
    """
    out = []
    for ch in str(token):
        if ch == " ":
            out.append("·")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif unicodedata.category(ch).startswith("C"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out) or "∅"
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def as_matrix(rows) -> np.ndarray:
    """Nested lists with None (JSON's NaN) as a float array with NaN."""
    return np.array([[math.nan if v is None else float(v) for v in row] for row in rows], dtype=float)


def _tick_step(n: int, max_labels: int) -> int:
    return max(1, math.ceil(n / max_labels))


# ---- attention scores over layers x heads ------------------------------------


def _panel_size(n_layers: int, n_heads: int) -> tuple[float, float]:
    """Inches for one layers x heads panel: 30 layers stay legible, 1-head toys stay small."""
    cell_h = 0.24 if n_layers > 12 else 0.42
    return max(1.6, n_heads * max(0.32, min(0.6, 2.4 / n_heads))), max(2.0, n_layers * cell_h + 1.2)


def _layer_head_ticks(ax, n_layers: int, n_heads: int) -> None:
    """Every layer labelled up to 32 layers (every other beyond), every head up to 16."""
    step = _tick_step(n_layers, 32)
    ax.set_yticks(np.arange(0, n_layers, step) + 0.5, [str(i) for i in range(0, n_layers, step)], rotation=0, fontsize=7)
    step = _tick_step(n_heads, 16)
    ax.set_xticks(np.arange(0, n_heads, step) + 0.5, [str(i) for i in range(0, n_heads, step)], fontsize=7)


def score_heatmaps(scores: dict, title: str = "", highlight: dict | None = None) -> Image:
    """One heatmap per score (layers down, heads across) on a shared 0..1 colour bar.

    ``highlight`` maps a score name to a (layer, head) to outline (the strongest head).
    Cell values are written in when the grid is small enough to read them.
    """
    names = [name for name in SCORE_TITLES if name in scores]
    mats = [as_matrix(scores[name]) for name in names]
    n_layers, n_heads = mats[0].shape
    panel_w, height = _panel_size(n_layers, n_heads)
    fig = new_figure(len(names) * panel_w + 1.6, height)
    axes = fig.subplots(1, len(names) + 1, width_ratios=[panel_w] * len(names) + [0.18])
    annotate = n_layers * n_heads <= 64
    for ax, name, mat in zip(axes, names, mats):
        sns.heatmap(
            mat, ax=ax, vmin=0, vmax=1, cmap="viridis", cbar=ax is axes[0], cbar_ax=axes[-1],
            cbar_kws={"label": "score (fraction of attention)"},
            annot=annotate, fmt=".2f", annot_kws={"fontsize": 8}, square=False, linewidths=0,
            mask=np.isnan(mat),
        )  # fmt: skip
        ax.set_facecolor("#d9d9d9")  # unmeasured heads (NaN) show as grey
        ax.set_title(SCORE_TITLES[name], fontsize=10)
        ax.set_xlabel("head")
        ax.set_ylabel("layer" if ax is axes[0] else "")
        _layer_head_ticks(ax, n_layers, n_heads)
        head = (highlight or {}).get(name)
        if head is not None:
            ax.add_patch(Rectangle((head[1], head[0]), 1, 1, fill=False, edgecolor="#ff3b30", linewidth=2))
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)
    alt = f"{title}: " if title else ""
    return to_image(fig, alt + "heatmaps of " + ", ".join(SCORE_TITLES[n] for n in names) + " over layers and heads")


# ---- one head's attention pattern ----------------------------------------------


def attention_pattern(pattern, tokens: Sequence[str], title: str) -> Image:
    """Query x key attention of one head on an example, tokens as both axes' labels."""
    mat = as_matrix(pattern)
    n = mat.shape[0]
    labels = [token_label(t) for t in tokens[:n]]
    # Two of these sit side by side on a laptop screen (about 5.6 in each).
    side = min(4.9, max(3.0, 0.11 * n + 1.3))
    fig = new_figure(side + 0.5, side)
    ax, cax = fig.subplots(1, 2, width_ratios=[side, 0.12])
    causal = np.triu(np.ones_like(mat, dtype=bool), k=1)
    sns.heatmap(mat, ax=ax, cbar_ax=cax, vmin=0, vmax=1, cmap="magma_r", mask=causal,
                cbar_kws={"label": "attention weight"})  # fmt: skip
    step = _tick_step(n, 48)
    ticks = np.arange(0, n, step)
    fontsize = 6.5 if n <= 40 else 5.5
    ax.set_xticks(ticks + 0.5, [labels[i] for i in ticks], rotation=90, fontsize=fontsize, parse_math=False)
    ax.set_yticks(ticks + 0.5, [labels[i] for i in ticks], rotation=0, fontsize=fontsize, parse_math=False)
    ax.set_xlabel("key (attended-to token)")
    ax.set_ylabel("query token")
    ax.set_title(title, fontsize=10, parse_math=False)
    return to_image(fig, f"attention pattern of {title}")


# ---- induction loss over positions ---------------------------------------------


def induction_loss_curves(curves: Sequence[dict]) -> Image:
    """Per-position loss on [BOS] A A, one panel per model, second copy shaded.

    Each curve: ``{"name", "per_position", "length", "bos", "first_half", "second_half"}``.
    """
    n = len(curves)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = new_figure(3.6 * cols + 0.4, 2.7 * rows + 0.3)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).flatten()
    for ax, curve in zip(axes, curves):
        loss = np.array([math.nan if v is None else v for v in curve["per_position"]], dtype=float)
        offset = 1 if curve.get("bos") else 0
        length = curve["length"]
        x = np.arange(1, len(loss) + 1)  # loss[i] predicts token i + 1
        ax.axvspan(offset + length - 0.5, offset + 2 * length - 0.5, color="#e8f0fe", label="second copy of A")
        ax.plot(x, loss, color=PALETTE[0], linewidth=1.2)
        for key, colour, label in (("first_half", PALETTE[3], "first copy"), ("second_half", PALETTE[2], "second copy")):
            if curve.get(key) is not None:
                ax.axhline(curve[key], color=colour, linestyle="--", linewidth=1, label=f"{label} mean {curve[key]:.2f}")
        ax.set_title(curve["name"], fontsize=10, parse_math=False)
        ax.set_xlabel("position of the predicted token")
        ax.set_ylabel("loss (nats)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[n:]:
        ax.set_visible(False)
    return to_image(fig, "induction loss at each position of [BOS] A A")


# ---- signed effects over layers x heads (ablation, patching) -----------------


def effect_heatmap(matrix, title: str, label: str = "effect", xlabel: str = "head") -> Image:
    """A diverging heatmap centred on zero: one cell per (layer, head), or per (layer, ``xlabel``)."""
    mat = as_matrix(matrix)
    n_layers, n_heads = mat.shape
    finite = mat[np.isfinite(mat)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    bound = bound or 1.0
    panel_w, height = _panel_size(n_layers, n_heads)
    fig = new_figure(panel_w + 1.4, height)
    ax, cax = fig.subplots(1, 2, width_ratios=[panel_w, 0.18])
    sns.heatmap(mat, ax=ax, cbar_ax=cax, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -bound, bound), mask=np.isnan(mat),
                annot=n_layers * n_heads <= 64, fmt=".2f", annot_kws={"fontsize": 8}, cbar_kws={"label": label})  # fmt: skip
    ax.set_facecolor("#d9d9d9")
    ax.set_xlabel(xlabel, parse_math=False)
    ax.set_ylabel("layer")
    _layer_head_ticks(ax, n_layers, n_heads)
    ax.set_title(title, fontsize=9, parse_math=False)
    return to_image(fig, title)


# ---- composition between the strongest heads ---------------------------------


def composition_heatmap(matrix, rows: Sequence[str], cols: Sequence[str], title: str) -> Image:
    """K-composition from earlier heads (rows) to later heads (columns); NaN = same/later layer."""
    mat = as_matrix(matrix)
    fig = new_figure(1.1 * len(cols) + 2.2, 0.45 * len(rows) + 1.4)
    ax = fig.subplots()
    sns.heatmap(mat, ax=ax, cmap="viridis", mask=np.isnan(mat), annot=True, fmt=".2f", annot_kws={"fontsize": 8},
                vmin=0, cbar_kws={"label": "K-composition"})  # fmt: skip
    ax.set_facecolor("#d9d9d9")
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols, rotation=0, fontsize=8)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, rotation=0, fontsize=8)
    ax.set_xlabel("later head (strongest induction heads)")
    ax.set_ylabel("earlier head\n(strongest previous-token heads)")
    ax.set_title(title, fontsize=10, parse_math=False)
    return to_image(fig, title)


# ---- the birth of the induction head over training ---------------------------

BIRTH_PANELS = (
    ("losses", "loss (nats)", ("loss", "icl_loss", "bigram_loss")),
    ("in-context accuracy", "accuracy", ("icl_accuracy", "ood_icl_accuracy")),
    ("memory recall", "top-1 recall", ("ov", "qk", "positional")),
    ("attention probes", "fraction of positions", ("prev_token_probe", "induction_probe")),
)


def birth_curves(series: dict, crossings: dict, labels: dict, title: str = "") -> Image:
    """Four panels over training steps; a dotted line where each curve is half-way.

    ``series`` maps a key to ``(steps, values)``; ``crossings`` maps a key to the step
    it first reached half-way (or None); ``labels`` maps a key to its legend text.
    """
    fig = new_figure(10.0, 6.4)
    axes = fig.subplots(2, 2).flatten()
    for ax, (panel_title, ylabel, keys) in zip(axes, BIRTH_PANELS):
        drawn = 0
        for i, key in enumerate(keys):
            if key not in series:
                continue
            steps, values = series[key]
            colour = PALETTE[i]
            ax.plot(steps, [math.nan if v is None else v for v in values], color=colour, marker="o" if len(steps) <= 30 else None,
                    markersize=3, linewidth=1.4, label=labels.get(key, key))  # fmt: skip
            if crossings.get(key) is not None:
                ax.axvline(crossings[key], color=colour, linestyle=":", linewidth=1.3)
            drawn += 1
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        if panel_title != "losses":
            ax.set_ylim(-0.03, 1.03)
        if drawn:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="#777")
    fig.suptitle((title + ": " if title else "") + "dotted lines: step where each curve is half-way to its final value", fontsize=10, parse_math=False)
    return to_image(fig, "training curves: losses, in-context accuracy, memory recall and attention probes over steps")
