"""Tests for findistill.costs.latency on tiny random BERTs (no downloads)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from tiny_bert import SENTENCES

from findistill.costs import latency
from findistill.costs.flops import encoder_flops
from findistill.costs.latency import (
    RESOURCE_METRICS,
    _batches,
    format_resources_table,
    measure_forward_latency,
    measure_latency,
    measure_resources,
    tokens_per_word,
)
from findistill.costs.size import count_parameters


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


class FakeClock:
    """Stands in for ``time`` in the latency module: time moves only when ``advance`` is called."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowTokenizer:
    """The fixture tokenizer, taking ``seconds`` of fake time per call."""

    def __init__(self, tokenizer, clock: FakeClock, seconds: float):
        self._tokenizer, self._clock, self._seconds = tokenizer, clock, seconds

    def __call__(self, *args, **kwargs):
        self._clock.advance(self._seconds)
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_mfu_cpu_b32_is_unpadded_encoder_flops_over_forward_time_alone(model, tokenizer, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    slow = SlowTokenizer(tokenizer, clock, seconds=1.0)  # tokenising a batch: 1 s
    hook = model.register_forward_pre_hook(lambda *_: clock.advance(0.004))  # a forward pass: 4 ms
    try:
        # 64 sentences = 2 batches of 32, each the 4 SENTENCES 8 times
        metrics = measure_resources(model, slow, SENTENCES * 16, n_b1=2, n_b32=2, peak_flops=1e9)
    finally:
        hook.remove()
    # one token per word plus [CLS] and [SEP]; batches are padded to 8 tokens, which must not count
    seq_lens = [len(s) + 2 for s in SENTENCES] * 16
    assert max(seq_lens) == 8 and min(seq_lens) == 5
    flops = encoder_flops(model.config, seq_lens)
    assert metrics["mfu_cpu_b32"] == pytest.approx(flops / (2 * 0.004) / 1e9)
    # end-to-end latency still includes the tokenizer
    assert metrics["latency_cpu_b32_ms_p50"] == pytest.approx(1004.0)
    assert metrics["latency_cpu_b1_ms_p50"] == pytest.approx(1004.0)


def test_measure_forward_latency_times_the_forward_pass_only(model, tokenizer, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    inputs = [dict(tokenizer(s, is_split_into_words=True, return_tensors="pt")) for s in SENTENCES[:3]]
    calls = []

    def forward_takes_2_ms(*_):
        calls.append(1)
        clock.advance(0.002)

    hook = model.register_forward_pre_hook(forward_takes_2_ms)
    try:
        ms = measure_forward_latency(model, inputs, warmup=2)
    finally:
        hook.remove()
    assert len(calls) == 2 + 3  # warm-up passes untimed, then each batch once
    assert ms == pytest.approx([2.0, 2.0, 2.0])
