"""Tests for findistill.resources on a tiny random BERT (no downloads)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertForTokenClassification, BertTokenizerFast

from findistill import resources
from findistill.resources import (
    RESOURCE_METRICS,
    count_parameters,
    encoder_flops,
    format_resources_table,
    measure_latency,
    measure_resources,
    model_size_mb,
    peak_matmul_flops,
    tokens_per_word,
)

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


def embedding_params(h: int = H) -> int:
    """Word + position + token-type (2) embeddings + LayerNorm (weight, bias)."""
    return V * h + P * h + 2 * h + 2 * h


def layer_params(h: int = H, f: int = FFN) -> int:
    """One BERT layer: Q, K, V, attn output (h*h + h each), LayerNorm, FFN in/out, LayerNorm."""
    attention = 4 * (h * h + h) + 2 * h
    ffn = (h * f + f) + (f * h + h) + 2 * h
    return attention + ffn


# ------------------------------------------------------------------------------- parameters


def test_count_parameters_splits_embedding_encoder_and_head(model):
    counts = count_parameters(model)
    assert model.bert.pooler is None  # BertForTokenClassification: add_pooling_layer=False
    assert counts["params_embedding"] == embedding_params()
    assert counts["params_encoder"] == LAYERS * layer_params()
    head = H * LABELS + LABELS
    assert counts["params_total"] == embedding_params() + LAYERS * layer_params() + head
    assert counts["params_total"] == sum(p.numel() for p in model.parameters())


def test_count_parameters_counts_tied_weights_once():
    tied = BertForMaskedLM(tiny_config(tie_word_embeddings=True))
    untied = BertForMaskedLM(tiny_config(tie_word_embeddings=False))
    assert tied.cls.predictions.decoder.weight is tied.bert.embeddings.word_embeddings.weight
    mlm_head = (H * H + H) + 2 * H + V  # transform dense, LayerNorm, one decoder bias
    expected = embedding_params() + LAYERS * layer_params() + mlm_head
    assert count_parameters(tied)["params_total"] == expected
    # untied: the decoder gets its own weight and its own bias
    assert count_parameters(untied)["params_total"] == expected + V * H + V


def test_count_parameters_counts_two_parameters_sharing_storage_once():
    module = torch.nn.Module()
    module.a = torch.nn.Parameter(torch.zeros(4, 3))
    module.b = torch.nn.Parameter(module.a.data)  # a second Parameter on the same memory
    assert count_parameters(module)["params_total"] == 12


def test_count_parameters_sees_packed_int8_weights(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation
        quantized = torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear}, dtype=torch.qint8
        )
    assert sum(p.numel() for p in quantized.parameters()) < count_parameters(model)["params_total"]
    assert count_parameters(quantized) == count_parameters(model)


def test_count_parameters_falls_back_to_input_embeddings():
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)
            self.proj = torch.nn.Linear(4, 2)

        def get_input_embeddings(self):
            return self.emb

    counts = count_parameters(Plain())
    assert counts == {"params_total": 40 + 10, "params_embedding": 40, "params_encoder": 10}


# ------------------------------------------------------------------------------- size on disk


def test_model_size_mb_is_the_safetensors_file_only(model, tmp_path):
    model.save_pretrained(tmp_path, safe_serialization=True)
    (tmp_path / "notes.txt").write_text("x" * 1_000_000)  # not a weight file
    weights = tmp_path / "model.safetensors"
    assert weights.exists()
    assert model_size_mb(tmp_path) == pytest.approx(weights.stat().st_size / 1e6)
    assert model_size_mb(weights) == pytest.approx(weights.stat().st_size / 1e6)
    # fp32: 4 bytes per parameter plus a JSON header of a few kB
    data_mb = 4 * count_parameters(model)["params_total"] / 1e6
    assert data_mb < model_size_mb(tmp_path) < data_mb + 0.01


def test_model_size_mb_sums_weight_files_and_rejects_empty_folders(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\0" * 1500)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.onnx").write_bytes(b"\0" * 500)
    (tmp_path / "config.json").write_text("{}")
    assert model_size_mb(tmp_path) == pytest.approx(2000 / 1e6)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no weight file"):
        model_size_mb(tmp_path / "empty")


# ------------------------------------------------------------------------------- FLOPs


def test_encoder_flops_hand_computed():
    config = tiny_config()
    per_layer = sum(2 * (4 * H * H + 2 * H * FFN) * n + 2 * 2 * n * n * H for n in (3, 5))
    # 2*(4096 + 4096)*3 + 4*9*32  +  2*(4096 + 4096)*5 + 4*25*32  = 49152+1152 + 81920+3200
    assert per_layer == 135_424
    assert encoder_flops(config, [3, 5]) == LAYERS * 135_424
    assert encoder_flops(tiny_config(num_hidden_layers=2 * LAYERS), [3, 5]) == 2 * LAYERS * 135_424
    assert encoder_flops(config, []) == 0


def test_peak_matmul_flops_is_positive_and_plausible():
    flops = peak_matmul_flops("cpu", n=128, repeats=2)
    assert math.isfinite(flops) and 1e6 < flops < 1e14


# ------------------------------------------------------------------------------- tokens, latency


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
    batches = resources._batches(SENTENCES, 3, 3)
    a, b, c, d = SENTENCES
    assert batches == [[a, b, c], [d, a, b], [c, d, a]]


# ------------------------------------------------------------------------------- all metrics


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


def test_device_info_never_raises_and_reports_cpu():
    info = resources.device_info("cuda")  # no GPU here: CPU tags only, no exception
    assert {"cpu_model", "cpu_logical_cores", "torch_version", "torch_threads"} <= set(info)
    assert all(isinstance(v, str) and v for v in info.values())
    if not torch.cuda.is_available():
        assert "gpu_name" not in info
