"""Tests for findistill.resources on a tiny random BERT (no downloads)."""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny_bert import FFN, LAYERS, N_LABELS, H, P, V, tiny_config
from transformers import BertForMaskedLM, BertForTokenClassification

from findistill.costs.size import count_parameters, model_size_mb


@pytest.fixture(scope="module")
def model() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(tiny_config())


def embedding_params(h: int = H) -> int:
    """Word + position + token-type (2) embeddings + LayerNorm (weight, bias)."""
    return V * h + P * h + 2 * h + 2 * h


def layer_params(h: int = H, f: int = FFN) -> int:
    """One BERT layer: Q, K, V, attn output (h*h + h each), LayerNorm, FFN in/out, LayerNorm."""
    attention = 4 * (h * h + h) + 2 * h
    ffn = (h * f + f) + (f * h + h) + 2 * h
    return attention + ffn


def test_count_parameters_splits_embedding_encoder_and_head(model):
    counts = count_parameters(model)
    assert model.bert.pooler is None  # BertForTokenClassification: add_pooling_layer=False
    assert counts["params_embedding"] == embedding_params()
    assert counts["params_encoder"] == LAYERS * layer_params()
    head = H * N_LABELS + N_LABELS
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
