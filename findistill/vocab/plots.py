"""Figures of tokenization statistics (matplotlib figures without pyplot, so no global backend state).
"""

from __future__ import annotations

import numpy as np

from findistill.vocab.analysis import FERTILITY_BINS, SEQ_LENGTH_LIMITS


def _figure(rows: int, cols: int, width: float, height: float):
    from matplotlib.figure import (
        Figure,  # the OO API: no pyplot, no global backend (Agg for PNG)
    )

    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _corpus_name(corpus: str, domains: dict[str, str]) -> str:
    return f"{corpus} ({domains[corpus]})" if domains.get(corpus) else corpus


def plot_fertility_hist(results: dict[str, dict[str, dict]], domains: dict[str, str] | None = None):
    """Bars of the share of words split into 1, 2, ... 8+ pieces, one panel per tokenizer, one bar
    per corpus; ``results[tokenizer][corpus]`` is a :func:`segmentation_stats` dict."""
    domains = domains or {}
    tokenizers = list(results)
    fig, axes = _figure(1, len(tokenizers), 6.0, 4.2)
    for ax, name in zip(axes[0], tokenizers):
        corpora = list(results[name])
        width = 0.8 / max(len(corpora), 1)
        x = np.arange(len(FERTILITY_BINS))
        for k, corpus in enumerate(corpora):
            stats = results[name][corpus]
            shares = [100 * stats["fertility_hist"][b] for b in FERTILITY_BINS]
            ax.bar(x + (k - (len(corpora) - 1) / 2) * width, shares, width,
                   label=f"{_corpus_name(corpus, domains)}: {stats['fertility_mean']:.3f} tok/word")
        ax.set_yscale("log")
        ax.set_xticks(x, FERTILITY_BINS)
        ax.set_xlabel("sub-tokens per word")
        ax.set_ylabel("% of words (log scale)")
        ax.set_title(f"Fertility: {name}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_seq_lengths(results: dict[str, dict[str, dict]], domains: dict[str, str] | None = None):
    """Step histograms of tokens per sentence (special tokens included), % of sentences per bin, per
    corpus, one panel per tokenizer. The x axis stops near the 99th percentile (at least 140, so the
    128 limit shows); the legend gives mean, p95 and the share over 128 / 512 for the whole tail."""
    domains = domains or {}
    tokenizers = list(results)
    fig, axes = _figure(1, len(tokenizers), 6.0, 4.2)
    every = [n for r in results.values() for s in r.values() for n in s["seq_lengths"]]
    right = max(140.0, float(np.percentile(every, 99)) * 1.15)
    bins = np.linspace(0, right, 41)
    for ax, name in zip(axes[0], tokenizers):
        for corpus, stats in results[name].items():
            lengths = np.minimum(stats["seq_lengths"], right)
            ax.hist(lengths, bins=bins, histtype="step", linewidth=1.6,
                    weights=np.full(len(lengths), 100.0 / len(lengths)),
                    label=f"{_corpus_name(corpus, domains)}: mean {stats['seq_len_mean']:.1f}, "
                          f"p95 {stats['seq_len_p95']:.0f}, >128 {stats['seq_over_128']:.1%}, "
                          f">512 {stats['seq_over_512']:.1%}")
        for limit in SEQ_LENGTH_LIMITS:
            if limit <= right:
                ax.axvline(limit, color="grey", linestyle="--", linewidth=0.8)
                ax.annotate(f"{limit}", (limit, 1), xycoords=("data", "axes fraction"), color="grey", fontsize=8,
                            xytext=(2, -10), textcoords="offset points")
        ax.set_xlim(0, right)
        ax.set_xlabel(f"tokens per sentence (with [CLS]/[SEP]; last bin: {right:.0f}+)")
        ax.set_ylabel("% of sentences")
        ax.set_title(f"Sequence length: {name}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def plot_fertility_summary(results: dict[str, dict[str, dict]], domains: dict[str, str] | None = None):
    """The headline: mean sub-tokens per word per corpus (general corpora first), one bar per
    tokenizer, for all words and for words inside entities."""
    domains = domains or {}
    tokenizers = list(results)
    corpora = sorted({c for r in results.values() for c in r},
                     key=lambda c: (domains.get(c) != "general", c))
    fig, axes = _figure(1, 2, 6.0, 4.2)
    x = np.arange(len(corpora))
    width = 0.8 / max(len(tokenizers), 1)
    for ax, key, title in ((axes[0][0], "fertility_mean", "all words"),
                           (axes[0][1], "fertility_entity", "words inside entities")):
        for k, name in enumerate(tokenizers):
            values = [results[name].get(c, {}).get(key) or 0.0 for c in corpora]
            bars = ax.bar(x + (k - (len(tokenizers) - 1) / 2) * width, values, width, label=name)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, [_corpus_name(c, domains) for c in corpora], rotation=15, fontsize=8)
        ax.set_ylabel("sub-tokens per word")
        ax.set_ylim(1.0, None)
        ax.set_title(f"Fertility, {title}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    return fig
