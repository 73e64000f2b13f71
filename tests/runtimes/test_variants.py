"""Inference variants of a tiny random classifier: ONNX Runtime and PyTorch int8 against PyTorch fp32."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from findistill.costs.size import count_parameters, model_size_mb
from findistill.evaluation.predict import tag_texts
from findistill.models.factorised import factorise_embeddings
from findistill.models.loading import ModelLoadError, load_token_classifier
from findistill.models.words import predict_word_logits
from findistill.runtimes.onnx import ExportError
from findistill.runtimes.variants import VariantError, load_inference_model, variant_of, write_variant

#: sentences of different lengths (one longer than max_length below, so it is chunked), batched with padding
SENTENCES = [
    ["Acme", "Holdings", "Inc", ".", "rose", "3", "%", "in", "New", "York", "."],
    ["Fitch", "rated", "the", "notes", "."],
    ["The", "lender", ",", "Lindqvist-Berg", "Bank", "N.A.", ",", "extended", "the", "facility", "to", "2031", "."] * 4,
    ["Dana", "Whitfield"],
]
TEXTS = ["Shares of Harbor Point Capital rose in London on Tuesday .", "", "Acme Corp. hired Dana Whitfield ."]


@pytest.fixture(scope="module")
def variants(tiny_classifier, tmp_path_factory):
    """name -> (folder, loaded model) for every variant of the tiny classifier."""
    model, tokenizer = tiny_classifier
    made = {}
    for name in ("onnx", "onnx-int8", "torch-int8"):
        folder = tmp_path_factory.mktemp(name)
        write_variant(model, tokenizer, name, folder, source="tiny", parameters=count_parameters(model),
                      per_channel=True)
        made[name] = (folder, load_inference_model(folder))
    return made


def _logits(model, tokenizer) -> list[np.ndarray]:
    return predict_word_logits(model, tokenizer, SENTENCES, batch_size=3, max_length=24)


def test_onnx_fp32_gives_pytorch_logits_and_the_same_spans(tiny_classifier, variants):
    model, tokenizer = tiny_classifier
    onnx = variants["onnx"][1]
    expected, got = _logits(model, tokenizer), _logits(onnx, tokenizer)
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-4)
        assert (g.argmax(-1) == e.argmax(-1)).all()
    assert tag_texts(onnx, tokenizer, TEXTS) == tag_texts(model, tokenizer, TEXTS)


@pytest.mark.parametrize("name", ["onnx-int8", "torch-int8"])
def test_int8_logits_stay_within_a_stated_tolerance_of_fp32(tiny_classifier, variants, name):
    model, tokenizer = tiny_classifier
    expected = np.concatenate(_logits(model, tokenizer))
    got = np.concatenate(_logits(variants[name][1], tokenizer))
    error = np.abs(got - expected)
    scale = np.abs(expected).max()
    # dynamic int8 rounds weights and activations to 1/127 of their range (per batch for activations): on
    # average the logits move by at most 3% of their range, and at least 95% of the words keep their label
    assert 0 < error.mean() <= 0.03 * scale, (error.mean(), scale)
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= 0.95


def test_variant_folders_record_source_parameters_and_shrink_on_disk(tiny_classifier, variants):
    model, _ = tiny_classifier
    fp32_size = model_size_mb(variants["onnx"][0])
    int8_folder, int8_model = variants["onnx-int8"]
    variant, info = variant_of(int8_folder)
    assert (variant.name, variant.label) == ("onnx-int8", "onnxruntime-int8")
    assert info["source"] == "tiny" and info["options"] == {"per_channel": True, "reduce_range": False}
    assert info["parameters"] == count_parameters(model) == count_parameters(int8_model)
    assert model_size_mb(int8_folder) < 0.5 * fp32_size  # int8 weights and embedding tables
    assert count_parameters(variants["torch-int8"][1]) == count_parameters(model)
    assert any("quantized" in type(m).__module__ for m in variants["torch-int8"][1].modules())
    assert variant_of(variants["torch-int8"][0])[0].label == "pytorch-int8"


def test_unknown_variant_and_broken_folders_fail_with_one_clear_reason(tiny_classifier, variants, tmp_path):
    model, tokenizer = tiny_classifier
    with pytest.raises(VariantError, match="expected one of onnx, onnx-int8, torch-int8, got 'onnx-int4'"):
        write_variant(model, tokenizer, "onnx-int4", tmp_path / "x", source="tiny", parameters={})
    folder = variants["onnx"][0]
    with pytest.raises(ModelLoadError, match="ONNX Runtime model .* inference only"):
        load_token_classifier(str(folder))  # e.g. given as a teacher to distil from

    broken = tmp_path / "broken"
    write_variant(model, tokenizer, "onnx", broken, source="tiny", parameters=count_parameters(model))
    (broken / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(ExportError, match="ONNX Runtime cannot load .*model.onnx"):
        load_inference_model(broken)
    (broken / "model.onnx").unlink()
    with pytest.raises(VariantError, match="needs model.onnx, which is missing"):
        load_inference_model(broken)
    (broken / "runtime.json").write_text(json.dumps({"variant": "fp8"}))
    with pytest.raises(VariantError, match="runtime.json: expected a JSON object with 'variant' one of"):
        variant_of(broken)


def test_onnx_model_refuses_hidden_states_it_does_not_have(tiny_classifier, variants):
    _, tokenizer = tiny_classifier
    batch = tokenizer(["a b"], return_tensors="pt")
    with pytest.raises(ValueError, match="logits only"):
        variants["onnx"][1](**batch, output_hidden_states=True)
    assert variants["onnx"][1](**batch).logits.dtype == torch.float32


@pytest.mark.parametrize("name", ["onnx", "onnx-int8", "torch-int8"])
@pytest.mark.parametrize("exact_rows", [0, 20])
def test_a_factorised_student_exports_to_every_variant_with_its_smaller_embeddings(tiny_classifier, tmp_path, name,
                                                                                   exact_rows):
    model, tokenizer = tiny_classifier
    factorised = copy.deepcopy(model)
    vocab = factorised.get_input_embeddings().weight.shape[0]
    counts = torch.arange(vocab, 0, -1, dtype=torch.float64) if exact_rows else None  # low ids the most frequent
    factorise_embeddings(factorised, 8, counts, exact_rows=exact_rows)
    expected = np.concatenate(_logits(factorised, tokenizer))
    write_variant(factorised, tokenizer, name, tmp_path, source="tiny-r8", parameters=count_parameters(factorised))
    loaded = load_inference_model(tmp_path)
    got = np.concatenate(_logits(loaded, tokenizer))
    # fp32 ONNX runs the two factors exactly; int8 stays within the tolerance of the test above
    tolerance = 1e-4 if name == "onnx" else 0.03 * np.abs(expected).max()
    assert np.abs(got - expected).mean() <= tolerance
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= 0.95
    assert count_parameters(loaded)["params_embedding"] < 0.5 * count_parameters(model)["params_embedding"]
