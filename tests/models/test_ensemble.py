"""Ensembles of token classifiers: mean logits, member checks, and evaluation as one model."""

import mlflow
import pytest
import torch
from conftest import LABELS
from tiny_bert import bert_classifier

from findistill.config import ConfigError, parse_params
from findistill.models.ensemble import EnsembleClassifier, check_members


def test_ensemble_logits_are_the_mean_of_the_members_logits():
    members = [bert_classifier(layers=2, width=32, vocab=64, seed=seed) for seed in (0, 1, 2)]
    ids = torch.randint(5, 64, (2, 7), generator=torch.Generator().manual_seed(0))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        alone = [m(**inputs).logits for m in members]
        together = EnsembleClassifier(members)(**inputs).logits
    assert torch.allclose(together, (alone[0] + alone[1] + alone[2]) / 3, atol=1e-6)
    assert not torch.allclose(alone[0], alone[1])


def test_members_with_other_labels_or_another_vocabulary_are_refused(packaged_tokenizer):
    from conftest import wordpiece_tokenizer

    first, second = bert_classifier(seed=0), bert_classifier(seed=1)
    check_members(["a", "b"], [first, second], [packaged_tokenizer, packaged_tokenizer])
    relabelled = bert_classifier(seed=1)
    relabelled.config.id2label = dict(enumerate(reversed(LABELS)))
    with pytest.raises(ConfigError, match="member b has the labels"):
        check_members(["a", "b"], [first, relabelled], [packaged_tokenizer, packaged_tokenizer])
    with pytest.raises(ConfigError, match="member b has another vocabulary"):
        check_members(["a", "b"], [first, second], [packaged_tokenizer, wordpiece_tokenizer(["bank"])])


def test_evaluate_scores_an_ensemble_in_one_run_and_a_model_with_itself_as_the_model(mlflow_store, tmp_path,
                                                                                     tiny_classifier):
    from findistill.stages import evaluate

    model, tokenizer = tiny_classifier
    folder = tmp_path / "member"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    params = {"data": "sample", "max_sentences": "40", "measure_resources": "false"}
    alone = mlflow.get_run(evaluate.run(parse_params(evaluate.Config, {**params, "model": str(folder)})))
    pair = mlflow.get_run(evaluate.run(parse_params(evaluate.Config, {**params, "model": f"{folder},{folder}"})))
    assert pair.info.status == "FINISHED" and pair.data.tags["findistill.ensemble_size"] == "2"
    assert pair.data.metrics["test_f1"] == pytest.approx(alone.data.metrics["test_f1"], abs=1e-12)
    predictions = [mlflow.artifacts.load_text(f"runs:/{r.info.run_id}/evaluation/test_predictions.conll")
                   for r in (alone, pair)]
    assert predictions[0] == predictions[1] and len({line.split("\t")[-1] for line in predictions[0].split("\n")}) > 2
    assert pair.data.metrics["params_total"] == 2 * alone.data.metrics["params_total"]
