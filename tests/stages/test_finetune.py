"""``finetune``: the stage trains on the device it is given."""

from __future__ import annotations

import mlflow
import pytest
import torch

import findistill.training.trainer as trainer_module
from findistill.config import parse_params
from findistill.stages import finetune


def test_device_cpu_trains_on_the_cpu_even_where_cuda_is_available(mlflow_store, tiny_encoder_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cuda_calls: list = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: cuda_calls.append(device))
    # each checkpoint holds the CUDA random state whenever CUDA is present; this build has none to read
    monkeypatch.setattr(torch.cuda.random, "get_rng_state", lambda device="cuda": torch.zeros(8, dtype=torch.uint8))
    seen: dict = {}
    real_fit = trainer_module.fit

    def spy_fit(trainer, output_dir, **kwargs):  # what the Trainer trained on, read as it finishes
        summary = real_fit(trainer, output_dir, **kwargs)
        seen.update(device=trainer.args.device, n_gpu=trainer.args.n_gpu, accelerator=trainer.accelerator.device,
                    parameters={p.device for p in trainer.model.parameters()}, steps=trainer.state.global_step)
        return summary

    monkeypatch.setattr(trainer_module, "fit", spy_fit)
    config = parse_params(finetune.Config, {
        "model": str(tiny_encoder_dir), "data": "sample", "max_sentences": "30", "epochs": "1", "batch_size": "8",
        "max_length": "64", "device": "cpu", "measure_resources": "false",
    })
    run_id = finetune.run(config)
    assert seen["steps"] > 0  # it did train
    assert seen["device"] == torch.device("cpu") and seen["n_gpu"] == 0
    assert seen["accelerator"] == torch.device("cpu")
    assert seen["parameters"] == {torch.device("cpu")}
    assert cuda_calls == []  # transformers selects a CUDA device with set_device; nothing did
    assert "test_f1" in mlflow.get_run(run_id).data.metrics


def test_runs_are_browsable_in_the_ui_datasets_logged_model_description_and_version_tags(mlflow_store,
                                                                                         tiny_encoder_dir):
    from mlflow.tracking import MlflowClient

    from findistill.stages import evaluate

    common = {"data": "sample", "max_sentences": "30", "epochs": "1", "batch_size": "8", "max_length": "64",
              "device": "cpu", "measure_resources": "false"}
    mlflow.set_experiment("ui")
    teacher = finetune.run(parse_params(finetune.Config, {
        **common, "model": str(tiny_encoder_dir), "registered_model_name": "fin-ner"}))
    student = finetune.run(parse_params(finetune.Config, {**common, "model": str(tiny_encoder_dir),
                                                          "student_layers": "1"}))
    client = MlflowClient()
    run = client.get_run(teacher)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the model-training view
    assert run.data.tags["mlflow.runName"] == "finetune teacher"
    assert client.get_run(student).data.tags["mlflow.runName"] == "finetune s1-same"
    inputs = {(d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"])
              for d in run.inputs.dataset_inputs}
    assert inputs == {("sample/train", "train"), ("sample/validation", "validation"), ("sample/test", "test")}
    description = run.data.tags["mlflow.note.content"]
    assert description.startswith("Fine-tuned the teacher on sample (30 training sentences).")
    assert f"test F1 {run.data.metrics['test_f1']:.4f}" in description

    # the logged model lists its evaluation, measured on the test dataset
    model_id = run.data.tags["findistill.model_id"]
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == teacher and logged.status.to_proto() == 2  # READY
    linked = {m.key: m for m in logged.metrics}
    assert linked["test_f1"].value == run.data.metrics["test_f1"] and linked["test_f1"].dataset_name == "sample/test"
    assert linked["params_total"].value == run.data.metrics["params_total"]

    # the registered version says what makes it comparable
    tags = client.get_model_version("fin-ner", "1").tags
    assert tags["role"] == "teacher" and tags["dataset"] == "sample" and tags["depth"] == "2"
    assert tags["model_id"] == model_id and tags["source_run"] == teacher
    assert float(tags["test_f1"]) == round(run.data.metrics["test_f1"], 4)

    # downstream stages take models:/<model_id>; evaluating links the scores to that model again
    evaluated = evaluate.run(parse_params(evaluate.Config, {
        "model": f"models:/{model_id}", "data": "sample", "max_sentences": "30", "max_length": "64",
        "measure_resources": "false"}))
    assert client.get_run(evaluated).data.metrics["test_f1"] == pytest.approx(run.data.metrics["test_f1"])
    assert {m.run_id for m in client.get_logged_model(model_id).metrics if m.key == "test_f1"} == {teacher, evaluated}
