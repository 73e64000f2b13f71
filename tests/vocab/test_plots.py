"""Tokenization analysis on hand-built cases with known answers, domain text streaming, and the
three ways of building a domain tokenizer (train / trim / extend), with their errors."""

from conftest import wordpiece_tokenizer

from findistill.data.corpus import Sentence
from findistill.vocab.analysis import (
    tokenization_stats,
)
from findistill.vocab.plots import plot_fertility_hist, plot_fertility_summary, plot_seq_lengths

TINY = ["the", "bank", "fin", "##ance", "##s", "x", "##y"]


SENTENCES = [Sentence(["The", "finances", "bank"], ["O", "B-ORG", "I-ORG"]),
             Sentence(["xyz", "bank"], ["B-PER", "O"])]


def test_plots_are_figures_with_one_panel_per_tokenizer():
    tokenizer = wordpiece_tokenizer(TINY)
    stats = tokenization_stats(tokenizer, SENTENCES)
    results = {"tiny": {"a": stats, "b": stats}, "again": {"a": stats, "b": stats}}
    for plot in (plot_fertility_hist, plot_seq_lengths):
        figure = plot(results, {"a": "general"})
        assert len(figure.axes) == 2 and "tiny" in figure.axes[0].get_title()
    assert len(plot_fertility_summary(results).axes) == 2
