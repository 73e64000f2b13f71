"""Models as MLflow pyfuncs: raw text in, entity spans (or mask fillings) out.

The Hugging Face folder travels inside the logged model (artifact ``hf_model``) with the
findistill code, so ``mlflow models serve`` needs nothing else. An NER model runs in the runtime
its folder holds (:mod:`findistill.runtimes`: ONNX Runtime for a ``model.onnx``, PyTorch
otherwise) with the thread count of its ``model_config`` (``threads``; 0: the runtime's default,
torch's intra-op count). A request it cannot read (no texts, a text that is not a string, one
longer than ``model_config["max_chars"]``) gets HTTP 400 with one line saying what was wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

import findistill
from findistill.evaluation.predict import fill_masks, tag_texts
from findistill.models.loading import load_masked_lm, load_tokenizer
from findistill.runtimes.variants import load_inference_model, variant_of

MODEL_ID_TAG = "findistill.model_id"


def log_ner_model(hf_dir: str | os.PathLike, *, max_length: int, example_texts: list[str]) -> str:
    """Log a model folder (``save_pretrained``, or a variant folder of :mod:`findistill.runtimes`) as an
    MLflow pyfunc NER model named ``model``; return its URI.

    The model answers a DataFrame with a ``text`` column with entity spans per text. Its
    ``model_config`` names the folder's runtime, ``max_chars`` (the longest text it accepts) and
    ``threads`` (0; override them when loading with
    ``mlflow.pyfunc.load_model(uri, model_config={"threads": n})``).
    """
    runtime = variant_of(hf_dir)[0]
    return log_hf_pyfunc(hf_dir, NerPyfunc(), max_length=max_length, example_texts=example_texts,
                         extra_config={"threads": 0, "runtime": runtime.label, "max_chars": DEFAULT_MAX_CHARS},
                         onnxruntime=runtime.runtime == "onnxruntime")


def log_hf_pyfunc(hf_dir: str | os.PathLike, python_model: Any, *, max_length: int, example_texts: list[str],
                  extra_config: dict[str, Any] | None = None, onnxruntime: bool = False) -> str:
    """Log a save_pretrained folder (artifact ``hf_model``) wrapped by ``python_model`` as ``model``; return
    ``runs:/<id>/model``. :func:`localize_model` finds the folder again for the next stage.

    The model is also an MLflow logged model (``models:/<model_id>``, tag ``findistill.model_id``):
    metrics the run logs afterwards at step 0 (the evaluation, the resource metrics) are linked to it,
    so the UI's model view lists them."""
    run_id = mlflow.active_run().info.run_id
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts={"hf_model": str(hf_dir)},
        code_paths=[str(Path(findistill.__file__).parent)],
        input_example=pd.DataFrame({"text": example_texts}),
        model_config={"max_length": max_length, **(extra_config or {})},
        pip_requirements=model_requirements(onnxruntime),
    )
    mlflow.set_tag(MODEL_ID_TAG, info.model_id)
    return f"runs:/{run_id}/model"


def model_requirements(onnxruntime: bool = False) -> list[str]:
    """The pip requirements of a logged model: the installed torch, transformers, mlflow and seqeval
    (and onnxruntime for an ONNX graph) pinned to the versions that trained and logged it (pandas and
    numpy unpinned)."""
    packages = ["torch", "transformers", "seqeval"] + (["onnxruntime"] if onnxruntime else [])
    return [f"{p}=={_version(p)}" for p in packages] + [f"mlflow=={mlflow.__version__}", "pandas", "numpy"]


def _version(package: str) -> str:
    """The installed version of ``package`` without a local build label (``2.13.0+cpu`` -> ``2.13.0``): the
    label names a wheel index (CPU, a CUDA build) and pip cannot install it from PyPI."""
    from importlib.metadata import version

    return version(package).split("+", 1)[0]


DEFAULT_MAX_CHARS = 100_000


def _texts(model_input: Any, *, max_chars: int | None = None) -> list[str]:
    """The texts of a DataFrame with a ``text`` column, a list of strings or one string; raise an
    ``MlflowException`` (``INVALID_PARAMETER_VALUE``, HTTP 400 when served) naming the first bad text.

    MLflow turns a dict whose values are lists of strings (``{"text": ["a", "b"]}``, also a REST
    ``inputs`` payload) into a single row holding the list, so a cell that is a list is read as
    that many texts (text ``i`` counts texts, not rows). Every text must be a string of at most
    ``max_chars`` characters (no limit when None), and there must be at least one. An empty string
    is a text: it has no words, so no entities."""
    if isinstance(model_input, str):
        cells: list[Any] = [model_input]
    elif hasattr(model_input, "columns") or isinstance(model_input, dict):
        columns = list(model_input.columns if hasattr(model_input, "columns") else model_input)
        if "text" not in columns:
            raise _invalid_input(f"no 'text' column (got {columns}); expected a 'text' column of strings")
        column = model_input["text"]
        cells = list(column) if isinstance(column, (list, tuple, np.ndarray, pd.Series)) else [column]
    elif isinstance(model_input, (list, tuple, np.ndarray, pd.Series)):
        cells = list(model_input)
    else:
        raise _invalid_input(f"the input is {_described(model_input)}; expected a DataFrame with a 'text' column, "
                             "a list of strings or a string")
    texts: list[str] = []
    for cell in cells:
        texts.extend(cell if isinstance(cell, (list, tuple, np.ndarray, pd.Series)) else [cell])
    if not texts:
        raise _invalid_input("no texts: expected at least one string in the 'text' column")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise _invalid_input(f"text {i} is {_described(text)}; expected a string")
        if max_chars is not None and len(text) > max_chars:
            raise _invalid_input(f"text {i} has {len(text):,} characters; at most {max_chars:,} are accepted "
                                 "(model_config max_chars)")
    return [str(t) for t in texts]  # numpy str_ -> str


def _described(value: Any) -> str:
    """``value`` for an error message: ``null``, or its type and a short repr (``an int (5)``)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "null"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({shown})"


def _invalid_input(message: str) -> MlflowException:
    """An ``INVALID_PARAMETER_VALUE`` error: the scoring server answers it with HTTP 400 and ``message``
    (any other exception gets a generic message and the stack trace in the body)."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _max_chars(value: Any) -> int:
    """``model_config["max_chars"]`` as a positive int, or a ValueError naming it."""
    try:
        max_chars = int(value)
    except (TypeError, ValueError):
        max_chars = 0
    if max_chars <= 0 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"model_config max_chars must be a positive whole number of characters, got {value!r}")
    return max_chars


class _HfPyfunc(mlflow.pyfunc.PythonModel):
    """A wrapper whose model and tokenizer are loaded by ``load_context``, never pickled: MLflow runs the
    wrapper on the input example before pickling it, and an ONNX Runtime session cannot be pickled
    (nor should a copy of the weights travel beside the ``hf_model`` artifact)."""

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("model", "tokenizer")}


class NerPyfunc(_HfPyfunc):
    """MLflow pyfunc wrapper: artifact ``hf_model`` is a model folder (model or ONNX graph + tokenizer)."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        config = context.model_config or {}
        threads = int(config.get("threads", 0))
        if threads > 0:
            torch.set_num_threads(threads)
        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = load_inference_model(context.artifacts["hf_model"], threads=threads or None)
        self.max_length = int(config.get("max_length", 256))
        self.max_chars = _max_chars(config.get("max_chars", DEFAULT_MAX_CHARS))

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001
        """DataFrame ``text`` column (a list of str or one str also works) -> one list of entity spans per text.

        The DataFrame hint tells MLflow the input needs no schema of its own; :func:`_texts` reads it and
        rejects (HTTP 400 when served) an input without texts, a text that is not a string, or one longer than
        ``model_config["max_chars"]`` characters (default 100,000)."""
        texts = _texts(model_input, max_chars=self.max_chars)
        return tag_texts(self.model, self.tokenizer, texts, max_length=self.max_length)


class FillMaskPyfunc(_HfPyfunc):
    """MLflow pyfunc wrapper of an adapted masked LM (artifact ``hf_model``): texts with mask tokens in,
    the top candidates of each mask out. ``finetune``/``distill`` use the folder inside as an encoder."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = load_masked_lm(context.artifacts["hf_model"])[0]
        self.model.eval()
        self.max_length = int((context.model_config or {}).get("max_length", 128))

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001
        """DataFrame ``text`` column (or list of str) -> the top candidates of each mask, per text."""
        return fill_masks(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)
