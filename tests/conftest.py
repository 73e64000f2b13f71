"""Shared fixtures: a tiny random encoder built from a config (no downloads), the shared corpora,
a temporary SQLite MLflow store, and (from pg_server.py) a throwaway PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pg_server"]  # the session fixture `postgres`

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
FINANCE = [
    "The Borrower shall repay the Loans in full on the Maturity Date .",
    "Harbor Point Capital agreed to buy Lindqvist Freight AB for $ 1.2 billion .",
    "Quarterly revenue rose 12 % while EBITDA margins narrowed , the company said .",
    "The Lenders may declare all outstanding Obligations immediately due and payable .",
    "Shares of Calloway Foods Inc. fell 3 % on the Nasdaq after the earnings release .",
] * 4
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_tokenizer(pieces: list[str]):
    """A BERT-style uncased WordPiece fast tokenizer over exactly ``SPECIALS + pieces`` (ids in that order)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {p: i for i, p in enumerate(SPECIALS + pieces)}
    core = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def write(folder: Path, name: str, text: str | bytes) -> Path:
    """Returns the path of a file written into ``folder`` (bytes as given, text as UTF-8)."""
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_benchmark(name: str, *, register: bool = False):
    """The script ``benchmarks/<name>.py`` as a module (``register``: also in ``sys.modules``, for scripts
    whose dataclasses look their module up; the caller removes it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def shared_corpus(name: str) -> Path:
    """Path of a corpus in ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"shared corpus {path} not found (expected ../shared/data beside the repo)")
    return path


def mlflow_run_command(entry: str, store: str, experiment: str, **params) -> tuple[list[str], dict[str, str]]:
    """The command and environment of ``mlflow run <repo> -e <entry> --env-manager local -P k=v ...`` against
    ``store``, as users run it."""
    command = [
        sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local",
        "--experiment-name", experiment,
    ]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` = this venv's
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TOKENIZERS_PARALLELISM": "false", "PATH": path}
    return command, env


def mlflow_run(entry: str, store: str, experiment: str, **params) -> subprocess.CompletedProcess:
    """Run :func:`mlflow_run_command` to the end."""
    command, env = mlflow_run_command(entry, store, experiment, **params)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="session")
def packaged_tokenizer():
    from findistill.models.loading import load_tokenizer

    return load_tokenizer("packaged:all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, packaged_tokenizer) -> Path:
    """A 2-layer, 32-wide random BERT encoder with the packaged uncased WordPiece tokenizer, saved
    like a Hugging Face checkpoint (safetensors)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=packaged_tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    path = tmp_path_factory.mktemp("tiny-encoder")
    BertModel(config, add_pooling_layer=False).save_pretrained(path, safe_serialization=True)
    packaged_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_classifier(tiny_encoder_dir):
    """(model, tokenizer) of the tiny encoder with a random 9-label NER head."""
    import torch

    from findistill.models.loading import load_token_classifier, load_tokenizer

    # the same head whichever tests ran before; not seed 0, whose head draws an outlier that int8 rounding moves
    # by 40% of the logits' range (tests/runtimes/test_variants.py states the tolerance of typical heads)
    torch.manual_seed(1)
    return load_token_classifier(str(tiny_encoder_dir), LABELS), load_tokenizer(str(tiny_encoder_dir))


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory) -> Path:
    """An SQLite tracking store with MLflow's tables created and nothing in them, made once per session:
    creating the tables takes seconds, copying the file does not."""
    import mlflow

    path = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch, _empty_store) -> str:
    """A fresh SQLite tracking store (a copy of the empty one; artifacts in the test's folder) for one test;
    returns its URI."""
    import shutil
    import sqlite3

    import mlflow

    shutil.copyfile(_empty_store, tmp_path / "mlflow.db")
    with sqlite3.connect(tmp_path / "mlflow.db") as db:  # the Default experiment's artifacts: this test's ./mlruns
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                   (str(tmp_path / "mlruns" / "0"),))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    experiment_env = os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # mlflow.set_experiment sets it: restored after
    monkeypatch.chdir(tmp_path)  # artifacts (./mlartifacts) and checkpoints (./.findistill) land here
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None  # an experiment set in this store means nothing in the next
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    if experiment_env is not None:
        os.environ["MLFLOW_EXPERIMENT_ID"] = experiment_env


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch):
    """Tests never reach the Hugging Face Hub. The Hub client reads HF_HUB_OFFLINE once, when it is imported
    (before this runs), so its constant is set too: a Hub id fails at once, not after network timeouts."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
