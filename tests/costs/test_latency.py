"""Tests for findistill.resources on a tiny random BERT (no downloads)."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

from findistill.costs.latency import (
    RESOURCE_METRICS,
    _batches,
    format_resources_table,
    measure_latency,
    measure_resources,
    tokens_per_word,
)
from findistill.costs.size import count_parameters

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


WORDS = ["the", "bank", "net", "income", "rose", "fell", "profit", "shares", "in", "q3", "."]


PIECES = ["##s", "##ed"]


V = len(SPECIAL) + len(WORDS) + len(PIECES)  # 18
H, P, LAYERS, FFN, LABELS = 32, 64, 2, 64, 5


SENTENCES = [
    ["the", "bank", "rose", "."],
    ["net", "income", "fell", "in", "q3", "."],
    ["the", "shares", "rose"],
    ["profit", "fell", "."],
]


def tiny_config(**overrides) -> BertConfig:
    kwargs = dict(
        vocab_size=V,
        hidden_size=H,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=FFN,
        max_position_embeddings=P,
        num_labels=LABELS,
    )
    kwargs.update(overrides)
    return BertConfig(**kwargs)


@pytest.fixture(scope="module")
def model() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(tiny_config())


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> BertTokenizerFast:
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + WORDS + PIECES) + "\n")
    tok = BertTokenizerFast.from_pretrained(str(folder))
    assert tok.tokenize("incomes") == ["income", "##s"]  # the fixture tokenises as the tests assume
    return tok


def test_tokens_per_word_counts_real_subtokens(tokenizer):
    assert tokens_per_word(tokenizer, SENTENCES) == 1.0
    # "incomes" -> income ##s: 7 words, 8 tokens
    sentences = [["the", "bank", "rose"], ["net", "incomes", "fell", "."]]
    assert tokens_per_word(tokenizer, sentences) == 8 / 7


def test_tokens_per_word_applies_truncation(tokenizer):
    # max_length 4 = [CLS] + 2 tokens + [SEP]: "the income ##s" keeps 2 words, 2 tokens
    assert tokens_per_word(tokenizer, [["the", "incomes", "rose"]], max_length=4) == 1.0
    # max_length 5: "the income ##s" = 2 words, 3 tokens; 6: everything = 3 words, 4 tokens
    assert tokens_per_word(tokenizer, [["the", "incomes", "rose"]], max_length=5) == 3 / 2
    assert tokens_per_word(tokenizer, [["the", "incomes", "rose"]], max_length=6) == 4 / 3


def test_measure_latency_times_max_batches_and_restores_train_mode(model, tokenizer):
    model.train()
    latencies = measure_latency(model, tokenizer, SENTENCES, batch_size=3, warmup=1, max_batches=5)
    assert len(latencies) == 5  # cycles through the 4 sentences
    assert all(ms > 0 for ms in latencies)
    assert model.training
    model.eval()


def test_batches_are_consecutive_full_slices_cycling():
    batches = _batches(SENTENCES, 3, 3)
    a, b, c, d = SENTENCES
    assert batches == [[a, b, c], [d, a, b], [c, d, a]]


def test_measure_resources_reports_exactly_the_cpu_metrics(model, tokenizer):
    threads_before = torch.get_num_threads()
    metrics = measure_resources(model, tokenizer, SENTENCES * 10, threads=1, n_b1=10, n_b32=2)
    assert set(metrics) == set(RESOURCE_METRICS)
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert all(metrics[k] > 0 for k in RESOURCE_METRICS)
    assert torch.get_num_threads() == threads_before
    assert metrics["cpu_threads"] == 1
    assert metrics["latency_cpu_b1_ms_p95"] >= metrics["latency_cpu_b1_ms_p50"]
    assert metrics["params_total"] == count_parameters(model)["params_total"]
    assert metrics["tokens_per_word"] == 1.0
    assert metrics["mfu_cpu_b32"] < 1
    assert metrics["peak_rss_mb"] > 10  # the Python process itself


def test_measure_resources_uses_model_dir_when_given(model, tokenizer, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 3_000_000)
    metrics = measure_resources(model, tokenizer, SENTENCES, model_dir=tmp_path, n_b1=2, n_b32=1)
    assert metrics["model_size_mb"] == pytest.approx(3.0)


def test_format_resources_table_lists_every_metric_with_unit():
    metrics = {"params_total": 1234567.0, "latency_cpu_b1_ms_p50": 2.5, "mfu_cpu_b32": 0.0123}
    table = format_resources_table(metrics)
    lines = table.strip().splitlines()
    assert lines[0] == "| metric | value | unit |"
    assert len(lines) == 2 + len(metrics)
    assert "| params_total | 1,234,567 | parameters |" in lines
    assert "| latency_cpu_b1_ms_p50 | 2.5 | ms |" in lines
    assert "| mfu_cpu_b32 | 1.23 % | of fp32 matmul peak |" in lines
