"""Quantization-aware training: the simulated rounding is ONNX Runtime's dynamic int8, and it comes off cleanly."""

import copy

import numpy as np
import pytest
import torch
from conftest import LABELS
from tiny_bert import bert_classifier

from findistill.data.splits import load_ner_data
from findistill.models.factorised import factorise_embeddings
from findistill.runtimes.onnx import export_onnx, graph_input_names, probe_batch, quantize_onnx, run_graph
from findistill.training.distill import PROJECTIONS, LossSettings, distill_student
from findistill.training.qat import MARK, QuantScheme, attach_fake_quant, detach_fake_quant
from findistill.training.trainer import TrainSettings


def _logits(model, inputs) -> np.ndarray:
    with torch.no_grad():
        return model(**inputs).logits.numpy()


@pytest.mark.parametrize(("factorised", "scheme"), [(True, QuantScheme(per_channel=False, reduce_range=False)),
                                                    (False, QuantScheme(per_channel=True, reduce_range=True))])
def test_the_simulated_rounding_gives_the_logits_of_onnx_runtimes_int8_model(tiny_classifier, tmp_path, factorised,
                                                                             scheme):
    model, tokenizer = tiny_classifier
    model = copy.deepcopy(model).eval()
    if factorised:  # the projection takes the table's rows as stored, not quantized again
        factorise_embeddings(model, 8)
    inputs = probe_batch(tokenizer, graph_input_names(model, tokenizer))
    export_onnx(model, tokenizer, tmp_path / "fp32.onnx")
    quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", per_channel=scheme.per_channel,
                  reduce_range=scheme.reduce_range)
    int8 = run_graph(tmp_path / "int8.onnx", {k: v.numpy() for k, v in inputs.items()})
    fp32 = _logits(model, inputs)
    attach_fake_quant(model, scheme)
    simulated = _logits(model, inputs)
    float_error = np.abs(fp32 - int8).max()
    assert float_error > 1e-3 * np.ptp(fp32)  # the rounding is visible in the logits...
    assert np.abs(simulated - int8).max() < 1e-5 * np.ptp(fp32)  # ... and the simulation makes the same


def test_fake_quantization_passes_gradients_and_comes_off_leaving_the_float_model(tiny_classifier):
    model, tokenizer = tiny_classifier
    model = copy.deepcopy(model).train()
    inputs = probe_batch(tokenizer, graph_input_names(model, tokenizer))
    keys = list(model.state_dict())
    fp32 = _logits(model.eval(), inputs)
    n_modules = sum(isinstance(m, (torch.nn.Linear, torch.nn.Embedding)) for m in model.modules())
    assert attach_fake_quant(model) == n_modules
    assert attach_fake_quant(model) == 0  # attached once only
    assert not np.allclose(_logits(model, inputs), fp32, atol=1e-5)
    model.zero_grad()
    model(**inputs).logits.square().sum().backward()
    for name, parameter in model.named_parameters():  # straight through the rounding, to every weight
        if name.endswith(("query.weight", "intermediate.dense.weight", "classifier.weight", "word_embeddings.weight")):
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert detach_fake_quant(model) == n_modules
    assert not any(getattr(m, MARK, False) for m in model.modules())
    np.testing.assert_array_equal(_logits(model, inputs), fp32)
    assert list(model.state_dict()) == keys  # nothing renamed: checkpoints and the saved model are the plain ones


def test_quantization_aware_distillation_trains_and_validates_with_the_rounding(tiny_classifier, tmp_path):
    teacher, tokenizer = tiny_classifier  # 32 wide
    student = bert_classifier(layers=1, width=16, vocab=len(tokenizer), seed=2).train()  # learns through projections
    data = load_ner_data("sample")
    seen: list[dict] = []

    def inspect(metrics: dict, epoch: int) -> None:  # after each epoch's validation, while the trainer holds it
        projections = list(getattr(student, PROJECTIONS).modules())
        seen.append({"f1": metrics.get("val_f1"),
                     "rounded": [type(m).__name__ for m in student.modules() if getattr(m, MARK, False)
                                 and not any(m is p for p in projections)],
                     "projections_rounded": any(getattr(m, MARK, False) for m in projections)})

    distill_student(student, tokenizer, teacher, tokenizer, data.splits["train"][:16],
                    data.splits["validation"][:8], LABELS, TrainSettings(epochs=2, batch_size=8, patience=5,
                                                                         max_length=64),
                    LossSettings(hidden_weight=1.0, layer_map=[(1, 2)]), tmp_path / "ckpt", progress=False,
                    on_epoch=inspect, quant_scheme=QuantScheme())
    assert len(seen) == 2 and all(entry["f1"] is not None for entry in seen)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in student.modules())
    for entry in seen:  # every linear layer and table of the student computed with the rounding ...
        assert entry["rounded"].count("Linear") == n_linear and entry["rounded"].count("Embedding") == 3
        assert not entry["projections_rounded"]  # ... but not the loss's projections, which are not exported
    assert not any(getattr(m, MARK, False) for m in student.modules())  # returned as a float model
    assert not hasattr(student, PROJECTIONS)
