"""Malformed inputs across the entry points, one table: each ends with exit code 2 and one line
``findistill <stage>: error: ...`` naming the parameter or file and what was expected, no run left
RUNNING or FINISHED for it (a run that opened ends FAILED with its reason in ``findistill.fail_reason``),
and no registered version.

Covered elsewhere, and listed in the table of the bad-input issue rather than repeated here: each kind
of malformed data file (tests/data/test_splits.py, test_readers.py, test_text.py, test_tags.py: missing
file, empty file, line without a tag, invalid tag, non-UTF-8 bytes, bad JSONL record, label sets that
differ between splits), the same through ``mlflow run`` (tests/stages/test_entrypoints.py), and malformed
serving requests answered with HTTP 400 (tests/tracking/test_serving.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
import pytest
from conftest import LABELS
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from findistill.cli import main as cli_main

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there
TINY = ["--max_sentences", "20", "--epochs", "1", "--measure_resources", "false", "--device", "cpu"]
NO_MODEL = ("no-model' does not exist", "expected a local folder written by save_pretrained")
NO_TOKENIZER = ("no-tokenizer' does not exist", "expected a local folder written by save_pretrained")
BAD_NAME_SPACE = "parameters:\n  temprature: {type: float, low: 1.0, high: 8.0}\n"
BAD_RANGE_SPACE = "parameters:\n  temperature: {type: float, low: 8.0, high: 1.0}\n"


@dataclass(frozen=True)
class Case:
    """``findistill <stage> <args>`` must fail with a line containing every one of ``says``.

    ``args`` may name ``{tmp}`` (the test's folder, also the working directory), ``{encoder}`` (a tiny
    encoder without a token-classification head), ``{teacher}`` (a tiny NER model with all the sample's
    labels), ``{narrow}`` (one that knows only PER), ``{tokenizer_only}`` and ``{config_only}`` (folders
    holding only a tokenizer, only a config.json); ``files`` are written into ``{tmp}`` first."""

    id: str
    stage: str
    args: tuple[str, ...]
    says: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)


CASES = [
    # data
    Case("data-missing-file", "prepare", ("--data", "{tmp}/missing.conll"),
         ("missing.conll", "no such file or folder", "expected a CoNLL/JSONL/parquet file")),
    Case("data-malformed-line", "prepare", ("--data", "{tmp}/bad.conll"),
         ("bad.conll:3", "expected 'token ... tag'"), files={"bad.conll": "Acme B-ORG\n\nrose\n"}),
    Case("data-validation-fraction", "prepare", ("--validation_fraction", "0.7"),
         ("parameter 'validation_fraction'", "between 0 and 0.5", "0.7")),
    Case("data-split-blocks", "prepare", ("--split_blocks", "-5"),
         ("parameter 'split_blocks'", "consecutive sentences", "-5")),
    Case("data-seed-not-int", "prepare", ("--seed", "forty-two"), ("parameter 'seed'", "expected an integer")),
    Case("unknown-parameter", "prepare", ("--max_sentence", "20"),
         ("unknown parameter(s) max_sentence", "valid:", "max_sentences")),
    # tokenizers and models
    Case("tokenizers-missing-path", "analyze_tokenization", ("--tokenizers", "{tmp}/no-tokenizer"),
         NO_TOKENIZER),
    Case("tokenizers-hub-id-offline", "analyze_tokenization", ("--tokenizers", "someone/some-tokenizer"),
         ("someone/some-tokenizer", "Hugging Face Hub", "packaged:all-MiniLM-L6-v2")),
    Case("tokenizer-split-unknown", "analyze_tokenization", ("--split", "dev"),
         ("parameter 'split'", "one of all, train, validation, test")),
    Case("train-tokenizer-method", "train_tokenizer", ("--method", "bpe-dropout"),
         ("parameter 'method'", "one of train, trim, extend")),
    Case("train-tokenizer-vocab-size-type", "train_tokenizer", ("--vocab_size", "8k"),
         ("parameter 'vocab_size'", "expected an integer")),
    Case("train-tokenizer-teacher-config-only", "train_tokenizer", ("--teacher", "{config_only}"),
         ("config-only", "no tokenizer", "expected a tokenizer or model folder")),
    Case("adapt-model-missing", "adapt", ("--model", "{tmp}/no-model", "--max_sentences", "20", "--epochs", "1"),
         NO_MODEL),
    Case("adapt-mlm-probability", "adapt", ("--mlm_probability", "1.5"),
         ("parameter 'mlm_probability'", "a fraction in (0, 1)")),
    Case("adapt-bool-maybe", "adapt", ("--use_train_split", "maybe"),
         ("parameter 'use_train_split'", "expected true/false", "maybe")),
    # finetune: parameters
    Case("epochs-not-int", "finetune", ("--epochs", "ten"), ("parameter 'epochs'", "expected an integer", "ten")),
    Case("learning-rate-not-number", "finetune", ("--learning_rate", "abc"),
         ("parameter 'learning_rate'", "expected a number", "abc")),
    Case("epochs-zero", "finetune", ("--epochs", "0"), ("parameter 'epochs'", "an integer >= 1")),
    Case("batch-size-zero", "finetune", ("--batch_size", "0"), ("parameter 'batch_size'", "an integer >= 1")),
    Case("checkpoint-steps-negative", "finetune", ("--checkpoint_steps", "-1"),
         ("parameter 'checkpoint_steps'", "a step count >= 1")),
    Case("precision-unknown", "finetune", ("--precision", "fp8"),
         ("parameter 'precision'", "one of auto, fp32, bf16, fp16", "fp8")),
    Case("precision-fp16-on-cpu", "finetune", ("--model", "{encoder}", "--precision", "fp16", *TINY),
         ("parameter 'precision'", "fp16 needs a CUDA device", "bf16 or fp32")),
    # finetune: models
    Case("model-hub-id-offline", "finetune", ("--model", "someone/some-model", *TINY),
         ("someone/some-model", "Hugging Face Hub", "packaged:all-MiniLM-L6-v2")),
    Case("model-tokenizer-only-folder", "finetune", ("--model", "{tokenizer_only}", *TINY),
         ("tokenizer-only", "not a model folder", "save_pretrained")),
    Case("student-tokenizer-missing", "finetune", ("--model", "{encoder}", "--tokenizer", "{tmp}/no-tokenizer",
                                                   *TINY),
         NO_TOKENIZER),
    # distill
    Case("distill-no-teacher", "distill", (), ("parameter 'teacher'", "a fine-tuned NER model")),
    Case("distill-teacher-labels-differ", "distill", ("--teacher", "{narrow}", *TINY),
         ("the data has entity types ['LOC', 'MISC', 'ORG'] that the model does not predict",
          "fine-tune on data with these types")),
    Case("distill-weights-without-rank", "distill", ("--teacher", "{teacher}", "--embedding_weights", "frequency"),
         ("parameter 'embedding_weights'", "uniform unless embedding_rank factorises")),
    Case("distill-exact-rows-without-weights", "distill",
         ("--teacher", "{teacher}", "--embedding_rank", "8", "--embedding_exact_rows", "100"),
         ("parameter 'embedding_exact_rows'", "embedding_weights=frequency (the counts choose the rows)", "100")),
    Case("distill-weights-text-missing", "distill",
         ("--teacher", "{teacher}", "--embedding_rank", "8", "--embedding_weights", "frequency",
          "--embedding_weights_text", "{tmp}/no-news.txt", "--student_layers", "1", *TINY),
         ("parameter 'embedding_weights_text'", "no-news.txt")),
    Case("distill-weights-text-without-frequency", "distill",
         ("--teacher", "{teacher}", "--embedding_rank", "8", "--embedding_weights_text", "{tmp}/news.txt"),
         ("parameter 'embedding_weights_text'", "none unless embedding_weights=frequency")),
    Case("distill-ffn-wider-than-teacher", "distill",
         ("--teacher", "{teacher}", "--intermediate_size", "100000", "--student_layers", "1", *TINY),
         ("parameter 'intermediate_size'", "a width in 1..")),
    Case("distill-temperature-negative", "distill", ("--teacher", "{teacher}", "--temperature", "-1"),
         ("parameter 'temperature'", "a positive number", "-1")),
    Case("distill-teacher-without-head", "distill", ("--teacher", "{encoder}", *TINY),
         ("tiny-encoder", "no token-classification head", "expected a fine-tuned NER model")),
    Case("distill-teacher-alias-missing", "distill", ("--teacher", "models:/fin-ner@nosuchalias", *TINY),
         ("models:/fin-ner@nosuchalias", "not found", "expected models:/<name>@<alias>")),
    # evaluate
    Case("evaluate-model-missing", "evaluate", ("--model", "{tmp}/no-model", "--measure_resources", "false"),
         NO_MODEL),
    Case("evaluate-encoder-without-head", "evaluate", ("--model", "{encoder}", "--max_sentences", "20",
                                                       "--measure_resources", "false", "--device", "cpu"),
         ("tiny-encoder", "no token-classification head", "expected a fine-tuned NER model")),
    Case("evaluate-alias-missing", "evaluate", ("--model", "models:/fin-ner@nosuchalias"),
         ("models:/fin-ner@nosuchalias", "not found", "expected models:/<name>@<alias>")),
    Case("evaluate-max-length", "evaluate", ("--model", "{teacher}", "--max_length", "4"),
         ("parameter 'max_length'", "between 8 and 4096")),
    Case("evaluate-batch-size-zero", "evaluate", ("--model", "{teacher}", "--batch_size", "0"),
         ("parameter 'batch_size'", ">= 1")),
    # quantize
    Case("quantize-variant-unknown", "quantize", ("--model", "{teacher}", "--variant", "onnx-int4"),
         ("parameter 'variant'", "one of onnx, onnx-int8, torch-int8", "onnx-int4")),
    Case("quantize-bool-maybe", "quantize", ("--model", "{teacher}", "--force", "maybe"),
         ("parameter 'force'", "expected true/false", "maybe")),
    Case("quantize-encoder-without-head", "quantize", ("--model", "{encoder}", "--max_sentences", "20",
                                                       "--measure_resources", "false"),
         ("tiny-encoder", "no token-classification head", "expected a fine-tuned NER model")),
    # search
    Case("search-space-unknown-parameter", "search", ("--teacher", "{teacher}", "--space", "{tmp}/space.yaml"),
         ("space.yaml", "parameters.temprature: unknown parameter", "searchable:"),
         files={"space.yaml": BAD_NAME_SPACE}),
    Case("search-space-bad-range", "search", ("--teacher", "{teacher}", "--space", "{tmp}/space.yaml"),
         ("space.yaml", "parameters.temperature: low 8.0 > high 1.0"), files={"space.yaml": BAD_RANGE_SPACE}),
    Case("search-space-not-yaml", "search", ("--teacher", "{teacher}", "--space", "{tmp}/space.yaml"),
         ("space.yaml line 3: not valid YAML", "expected"),
         files={"space.yaml": "parameters:\n  temperature: {type: float\n"}),
    Case("search-space-missing", "search", ("--teacher", "{teacher}", "--space", "{tmp}/nospace.yaml"),
         ("parameter 'space'", "nospace.yaml", "a YAML file")),
    Case("search-objectives", "search", ("--teacher", "{teacher}", "--objectives", "f1,speed"),
         ("parameter 'objectives'", "expected f1, f1,latency or f1,params")),
    # compare, promote, main
    Case("compare-experiment-unknown", "compare", ("--experiments", "no-such-study"),
         ("experiments", "no experiment 'no-such-study'", "known:")),
    Case("compare-filter", "compare", ("--filter", "metrics.test_f1 >>> 0.5"),
         ("filter", "MLflow cannot search runs with")),
    Case("compare-split", "compare", ("--split", "dev"), ("parameter 'split'", "one of")),
    Case("promote-no-name", "promote", (), ("parameter 'name'", "the name of a registered model")),
    Case("promote-unknown-model", "promote", ("--name", "fin-ner"), ("name", "no registered model 'fin-ner'")),
    Case("main-strategy", "main", ("--strategy", "distill-only"), ("parameter 'strategy'", "one of finetune-distill")),
    Case("main-quantize-variant", "main", ("--quantize", "onnx-int4"),
         ("parameter 'quantize'", "'none' or one of onnx, onnx-int8, torch-int8")),
    Case("main-model-missing", "main", ("--model", "{tmp}/no-model"), NO_MODEL),
    Case("main-search-space-missing", "main", ("--search", "{tmp}/nospace.yaml", "--model", "{encoder}",
                                               "--student_layers", "1"),
         ("parameter 'search'", "nospace.yaml", "a search-space YAML file")),
    Case("main-search-space-bad", "main", ("--search", "{tmp}/space.yaml", "--model", "{encoder}",
                                           "--student_layers", "1", *TINY),
         ("space.yaml", "parameters.temprature: unknown parameter"), files={"space.yaml": BAD_NAME_SPACE}),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_encoder_dir) -> dict[str, str]:
    """The model folders the cases name (see :class:`Case`)."""
    from findistill.models.loading import load_token_classifier, load_tokenizer

    root = tmp_path_factory.mktemp("bad-input-models")
    tokenizer = load_tokenizer(str(tiny_encoder_dir))
    folders = {"encoder": tiny_encoder_dir}
    for name, labels in (("teacher", LABELS), ("narrow", ["O", "B-PER", "I-PER"])):
        folders[name] = root / name
        load_token_classifier(str(tiny_encoder_dir), labels).save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    folders["tokenizer_only"] = root / "tokenizer-only"
    tokenizer.save_pretrained(folders["tokenizer_only"])
    folders["config_only"] = root / "config-only"
    folders["config_only"].mkdir()
    (folders["config_only"] / "config.json").write_text((tiny_encoder_dir / "config.json").read_text())
    return {name: str(path) for name, path in folders.items()}


def _error_line(err: str, stage: str) -> str:
    """The CLI's error line: the last line on stderr (a message of several lines, or a traceback, fails)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Traceback" not in err, err
    line = lines[-1]
    assert line.startswith(f"findistill {stage}: error: "), err
    return line


def _runs() -> list:
    client = MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_in_one_line_and_leaves_nothing_behind(case, mlflow_store, models, tmp_path, capsys,
                                                              record_property):
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    args = [arg.format(tmp=tmp_path, **models) for arg in case.args]
    assert cli_main([case.stage, *args]) == 2
    line = _error_line(capsys.readouterr().err, case.stage)
    runs = _runs()
    record_property("message", line)
    record_property("runs", " ".join(run.info.status for run in runs) or "none")
    for words in case.says:
        assert words in line, (words, line)
    for run in runs:
        assert run.info.status == "FAILED", (run.info.run_name, run.info.status)
        assert run.data.tags.get("findistill.fail_reason"), run.info.run_name
    assert MlflowClient().search_registered_models() == []


def test_an_unreachable_tracking_server_is_named_before_any_run(mlflow_store, monkeypatch, capsys, record_property):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    mlflow.set_tracking_uri(UNREACHABLE)
    assert cli_main(["prepare", "--max_sentences", "20"]) == 2
    line = _error_line(capsys.readouterr().err, "prepare")
    record_property("message", line)
    assert f"tracking URI {UNREACHABLE}: cannot connect" in line and "start the server" in line
    mlflow.set_tracking_uri(mlflow_store)
    assert _runs() == []  # nothing went to the local store instead
