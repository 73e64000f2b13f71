"""``adapt``: what each mode measures on held-out text."""

from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import BertConfig, BertModel

from findistill.config import parse_params
from findistill.models.loading import load_tokenizer
from findistill.stages import adapt


def _adapt(model_dir, **params: str) -> str:
    config = parse_params(adapt.Config, {
        "model": str(model_dir), "data": "sample", "max_sentences": "40", "epochs": "2", "batch_size": "8",
        "learning_rate": "0.005", "max_length": "64", "eval_sentences": "6", "device": "cpu", **params,
    })
    return adapt.run(config)


def test_general_distillation_reports_the_held_out_hidden_state_loss_and_no_perplexity(mlflow_store,
                                                                                       tiny_encoder_dir, tmp_path):
    teacher = tmp_path / "teacher"  # another random encoder (a student cut from its teacher starts close to it)
    torch.manual_seed(1)
    BertModel(BertConfig.from_pretrained(tiny_encoder_dir), add_pooling_layer=False).save_pretrained(teacher)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(teacher)
    run_id = _adapt(tiny_encoder_dir, teacher=str(teacher), student_layers="1")
    run = mlflow.get_run(run_id)
    metrics = run.data.metrics
    assert run.data.tags["findistill.adapt_mode"] == "general-distillation"
    assert not [k for k in metrics if "pppl" in k or "mlm_loss" in k]  # its language-model head never trained
    assert metrics["heldout_hidden_loss"] < metrics["heldout_hidden_loss_before"]
    history = MlflowClient().get_metric_history(run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    assert metrics["best_val_loss"] == min(m.value for m in history)
    # the best epoch's weights were kept
    assert metrics["heldout_hidden_loss"] == pytest.approx(metrics["best_val_loss"], rel=1e-6)
    assert [k for k in metrics if k.startswith("val_")] == ["val_loss"]  # no timings logged as scores


def test_dapt_reports_masked_lm_loss_and_perplexity_before_and_after(mlflow_store, tiny_encoder_dir):
    run_id = _adapt(tiny_encoder_dir)
    run = mlflow.get_run(run_id)
    metrics = run.data.metrics
    assert run.data.tags["findistill.adapt_mode"] == "dapt"
    assert {"heldout_pppl_word", "heldout_pppl_word_before", "heldout_mlm_loss", "heldout_mlm_loss_before",
            "best_val_loss", "best_epoch"} <= set(metrics)
    assert "heldout_hidden_loss" not in metrics
    history = MlflowClient().get_metric_history(run_id, "val_loss")
    assert metrics["best_val_loss"] == min(m.value for m in history)
