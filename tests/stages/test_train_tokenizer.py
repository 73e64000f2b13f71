"""Tokenization analysis on hand-built cases with known answers, domain text streaming, and the
three ways of building a domain tokenizer (train / trim / extend), with their errors."""

import pytest
from conftest import FINANCE
from transformers import AutoTokenizer

from findistill.config import ConfigError, parse_params
from findistill.data.splits import load_ner_data
from findistill.data.text import sentence_texts
from findistill.tracking.runs import localize
from findistill.vocab.build import count_words


def test_stage_configs_validate_their_parameters():
    from findistill.stages import analyze_tokenization, train_tokenizer

    with pytest.raises(ConfigError, match="parameter 'text_data'"):
        parse_params(train_tokenizer.Config, {"use_train_split": "false"})
    with pytest.raises(ConfigError, match="parameter 'method'"):
        parse_params(train_tokenizer.Config, {"method": "chop"})
    with pytest.raises(ConfigError, match="parameter 'vocab_size'"):
        parse_params(train_tokenizer.Config, {"vocab_size": "1"})
    with pytest.raises(ConfigError, match="parameter 'split'"):
        parse_params(analyze_tokenization.Config, {"split": "dev"})
    with pytest.raises(ConfigError, match="parameter 'tokenizers'"):
        parse_params(analyze_tokenization.Config, {"tokenizers": " , "})
    assert parse_params(train_tokenizer.Config, {"vocab_size": "4000.0"}).vocab_size == 4000


@pytest.mark.integration  # about 10-15 s on 2 busy cores (two stages, five plots)
def test_train_then_analyze_through_mlflow(mlflow_store, tmp_path):
    """train_tokenizer logs runs:/<id>/tokenizer; analyze_tokenization reads it back beside the teacher."""
    import mlflow

    from findistill.stages import analyze_tokenization, train_tokenizer

    text = tmp_path / "domain.txt"
    text.write_text("\n".join(FINANCE) + "\n", encoding="utf-8")
    trained = train_tokenizer.run(train_tokenizer.Config(method="trim", vocab_size=2500, text_data=str(text)))
    run = mlflow.get_run(trained)
    assert run.data.tags["findistill.tokenizer_name"].startswith("trim-")
    assert run.data.metrics["heldout_same_pieces_as_teacher"] <= 1.0
    assert run.data.metrics["embedding_params"] == run.data.metrics["vocab_size"] * 384
    folder = localize(f"runs:/{trained}/tokenizer")
    assert len(AutoTokenizer.from_pretrained(folder)) == run.data.metrics["vocab_size"]

    analysed = analyze_tokenization.run(analyze_tokenization.Config(
        tokenizers=f"packaged:all-MiniLM-L6-v2,runs:/{trained}/tokenizer", corpora="sample", max_sentences=40))
    metrics = mlflow.get_run(analysed).data.metrics
    name = run.data.tags["findistill.tokenizer_name"].replace(".", "_")
    assert metrics["same_pieces.sample.teacher"] == 1.0
    assert metrics[f"fertility_mean.sample.{name}"] >= metrics["fertility_mean.sample.teacher"] > 1.0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(analysed, "plots")}
    assert artifacts == {"plots/fertility_hist.png", "plots/fertility_summary.png", "plots/seq_len_hist.png"}
    summary = mlflow.artifacts.load_dict(f"runs:/{analysed}/tokenization/summary.json")
    assert set(summary["results"]) == {"teacher", name}


def test_domain_text_never_comes_from_the_test_split(mlflow_store, packaged_tokenizer):
    """extend with min_frequency=1 adds words seen once: none of them may be a word only the test split has."""
    import mlflow

    from findistill.stages import train_tokenizer

    run_id = train_tokenizer.run(train_tokenizer.Config(method="extend", vocab_size=30522 + 200, min_frequency=1))
    added = mlflow.artifacts.load_dict(f"runs:/{run_id}/tokenizer_report.json")["build"]["first_added"]
    data = load_ner_data("sample")
    words = {split: set(count_words(packaged_tokenizer, sentence_texts(data.splits[split])))
             for split in ("train", "test")}
    assert added and set(added) <= words["train"]
    assert words["test"] - words["train"]  # the check above could fail
