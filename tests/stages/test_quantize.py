"""``quantize``: variants of a tiny model that has learnt its data by heart, so that F1 can drop."""

from __future__ import annotations

import mlflow
import pytest
import torch
from conftest import mlflow_run
from mlflow.tracking import MlflowClient
from transformers import set_seed

from findistill.cli import main as cli_main
from findistill.costs.latency import RESOURCE_METRICS
from findistill.data.splits import load_ner_data
from findistill.evaluation.predict import tag_texts
from findistill.models.loading import load_token_classifier, load_tokenizer
from findistill.runtimes.onnx import OnnxTokenClassifier
from findistill.runtimes.variants import load_inference_model
from findistill.tracking.pyfunc import log_ner_model
from findistill.tracking.runs import localize_model
from findistill.training.trainer import TrainSettings, train_token_classifier

pytestmark = pytest.mark.integration

SENTENCES = [
    ("Acme Corp hired Dana Whitfield in Boston .", "B-ORG I-ORG O B-PER I-PER O B-LOC O"),
    ("Fitch downgraded Harbor Point Capital .", "B-ORG O B-ORG I-ORG I-ORG O"),
    ("Shares of Lindqvist Freight fell in London .", "O O B-ORG I-ORG O O B-LOC O"),
    ("Maria Lopez joined Northwind Bank .", "B-PER I-PER O B-ORG I-ORG O"),
    ("The notes trade in New York .", "O O O O B-LOC I-LOC O"),
    ("Reuters reported the deal on Tuesday .", "B-ORG O O O O O O"),
]
TEXTS = ["Acme Corp hired Maria Lopez in New York .", ""]


@pytest.fixture(scope="module")
def _by_heart(tiny_encoder_dir, tmp_path_factory):
    """(data folder, model folder): the tiny encoder fine-tuned, once for the module, until it knows its six
    sentences by heart (the same sentences are its train, validation and test splits)."""
    root = tmp_path_factory.mktemp("by-heart")
    data = root / "data"
    data.mkdir()
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s.split(), tags.split())) for s, tags in SENTENCES)
    for split in ("train", "validation", "test"):
        (data / f"{split}.conll").write_text(text + "\n", encoding="utf-8")
    corpus = load_ner_data(str(data))
    splits, labels = corpus.splits, corpus.labels
    set_seed(42)  # as the finetune stage seeds the new head
    model = load_token_classifier(str(tiny_encoder_dir), labels)
    tokenizer = load_tokenizer(str(tiny_encoder_dir))
    settings = TrainSettings(epochs=40, learning_rate=0.01, batch_size=2, max_length=32, patience=40)
    summary = train_token_classifier(model, tokenizer, splits["train"], splits["validation"], labels, settings,
                                     root / "checkpoints", progress=False)
    assert summary["best_val_f1"] >= 0.8  # learnt: a broken variant has F1 to lose
    model.save_pretrained(root / "model", safe_serialization=True)
    tokenizer.save_pretrained(root / "model")
    return data, root / "model"


@pytest.fixture
def learnt(mlflow_store, _by_heart):
    """(data folder, runs:/<id>/model): the model that knows its sentences by heart, logged in this test's store."""
    data, folder = _by_heart
    with mlflow.start_run(run_name="by heart"):
        uri = log_ner_model(folder, max_length=32, example_texts=TEXTS[:1])
    return data, uri


def _quantize_runs():
    return mlflow.search_runs(search_all_experiments=True, filter_string="tags.`findistill.stage` = 'quantize'",
                              order_by=["attributes.start_time DESC"])


def test_an_int8_variant_is_logged_measured_registered_and_serves_like_itself(learnt):
    data, source = learnt
    assert cli_main(["quantize", "--data", str(data), "--model", source, "--variant", "onnx-int8",
                     "--max_length", "32", "--registered_model_name", "tiny-ner"]) == 0
    run = _quantize_runs().iloc[0]
    assert run.status == "FINISHED"
    assert run["tags.findistill.variant"] == "onnx-int8" and run["tags.findistill.runtime"] == "onnxruntime-int8"
    assert run["tags.findistill.source_model"] == source and run["tags.findistill.f1_guard"] == "passed"
    assert abs(run["metrics.f1_delta_vs_source"]) <= 0.01
    assert run["metrics.validation_f1"] == pytest.approx(
        run["metrics.source_validation_f1"] + run["metrics.f1_delta_vs_source"])
    assert {"metrics.test_f1", "metrics.source_test_f1", "metrics.test_f1_delta_vs_source"} <= set(run.index)
    for name in RESOURCE_METRICS:  # measured in a fresh process that loads the ONNX graph
        assert run[f"metrics.{name}"] >= 0, name
    folder = localize_model(f"runs:/{run.run_id}/model")
    assert load_inference_model(folder).parameter_counts["params_total"] == run["metrics.params_total"]

    served = mlflow.pyfunc.load_model(f"runs:/{run.run_id}/model")
    expected = tag_texts(load_inference_model(folder), load_tokenizer(folder), TEXTS, max_length=32)
    assert served.predict({"text": TEXTS}) == expected
    assert any(span["entity"] == "ORG" for span in expected[0])

    version = MlflowClient().get_model_version("tiny-ner", "1")
    assert version.tags["runtime"] == "onnxruntime-int8" and version.tags["parent_model"] == source
    assert version.tags["variant"] == "onnx-int8" and version.tags["role"] == "quantized"
    assert float(version.tags["test_f1"]) == pytest.approx(run["metrics.test_f1"], abs=1e-4)

    # evaluate takes the variant like any model and scores what quantize scored
    assert cli_main(["evaluate", "--data", str(data), "--model", f"runs:/{run.run_id}/model", "--max_length", "32",
                     "--measure_resources", "false"]) == 0
    evaluated = mlflow.search_runs(search_all_experiments=True,
                                   filter_string="tags.`findistill.stage` = 'evaluate'").iloc[0]
    assert evaluated["metrics.test_f1"] == pytest.approx(run["metrics.test_f1"], abs=1e-9)
    assert evaluated["tags.findistill.runtime"] == "onnxruntime-int8"
    # both runs' test F1 are linked to the variant's logged model (the UI's model view lists them)
    logged = MlflowClient().get_logged_model(run["tags.findistill.model_id"])
    linked = {(m.key, m.run_id, m.dataset_name) for m in logged.metrics}
    assert {("test_f1", run.run_id, "data/test"), ("test_f1", evaluated.run_id, "data/test")} <= linked


def test_the_f1_guard_refuses_a_variant_made_to_fail_unless_forced(learnt, monkeypatch, capsys):
    data, source = learnt
    real_forward = OnnxTokenClassifier.forward

    def shifted(self, *args, **kwargs):  # every word gets the next label's score: a broken graph
        output = real_forward(self, *args, **kwargs)
        output.logits = torch.roll(output.logits, 1, dims=-1)
        return output

    monkeypatch.setattr(OnnxTokenClassifier, "forward", shifted)
    args = ["quantize", "--data", str(data), "--model", source, "--variant", "onnx", "--max_length", "32",
            "--measure_resources", "false", "--registered_model_name", "tiny-ner"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "onnx loses" in err and "F1 points on validation against its source" in err
    assert "max_f1_drop=0.01" in err and "\n" not in err.strip()  # one line
    refused = _quantize_runs().iloc[0]
    assert refused.status == "FAILED" and refused["tags.findistill.f1_guard"] == "refused"
    assert refused["metrics.f1_delta_vs_source"] < -0.01
    assert "model" not in {a.path for a in MlflowClient().list_artifacts(refused.run_id)}
    assert not MlflowClient().search_model_versions("name='tiny-ner'")

    assert cli_main([*args, "--force", "true"]) == 0
    forced = _quantize_runs().iloc[0]
    assert forced.status == "FINISHED" and forced["tags.findistill.f1_guard"] == "forced"
    assert len(MlflowClient().search_model_versions("name='tiny-ner'")) == 1


def test_bad_variants_are_refused_in_one_line(learnt, capsys):
    data, source = learnt
    assert cli_main(["quantize", "--data", str(data), "--model", source, "--variant", "onnx-int4"]) == 2
    expected = "parameter 'variant': expected one of onnx, onnx-int8, torch-int8, got 'onnx-int4'"
    assert expected in capsys.readouterr().err
    assert cli_main(["quantize", "--data", str(data), "--model", source, "--max_f1_drop", "5"]) == 2
    assert "parameter 'max_f1_drop'" in capsys.readouterr().err
    assert cli_main(["quantize", "--data", str(data), "--model", source, "--variant", "torch-int8",
                     "--max_length", "32", "--measure_resources", "false"]) == 0
    variant = f"runs:/{_quantize_runs().iloc[0].run_id}/model"
    assert cli_main(["quantize", "--data", str(data), "--model", variant, "--measure_resources", "false"]) == 2
    assert f"{variant} is already a torch-int8 variant; quantize the model it was made from ({source})" in \
        capsys.readouterr().err


def test_quantize_through_mlflow_run_keeps_fp32_predictions_exactly(learnt, mlflow_store):
    data, source = learnt
    done = mlflow_run("quantize", mlflow_store, "quantize", data=data, model=source, variant="onnx", max_length=32,
                      measure_resources="false")
    assert done.returncode == 0, done.stderr[-3000:]
    run = mlflow.search_runs(experiment_names=["quantize"]).iloc[0]
    assert run.status == "FINISHED" and run["tags.mlflow.runName"] == "quantize onnx"
    assert run["metrics.f1_delta_vs_source"] == 0 and run["metrics.test_f1_delta_vs_source"] == 0
