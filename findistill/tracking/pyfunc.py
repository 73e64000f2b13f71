"""Models as MLflow pyfuncs: raw text in, entity spans (or mask fillings) out.

The Hugging Face folder travels inside the logged model (artifact ``hf_model``) with the
findistill code, so ``mlflow models serve`` needs nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd

import findistill
from findistill.evaluation.predict import fill_masks, tag_texts
from findistill.models.loading import load_masked_lm, load_token_classifier, load_tokenizer


def log_ner_model(hf_dir: str | os.PathLike, *, max_length: int, example_texts: list[str]) -> str:
    """Log a save_pretrained folder as an MLflow pyfunc NER model named ``model``; return its URI.

    The model answers a DataFrame with a ``text`` column with entity spans per text.
    """
    return log_hf_pyfunc(hf_dir, NerPyfunc(), max_length=max_length, example_texts=example_texts)


def log_hf_pyfunc(hf_dir: str | os.PathLike, python_model: Any, *, max_length: int, example_texts: list[str]) -> str:
    """Log a save_pretrained folder (artifact ``hf_model``) wrapped by ``python_model`` as ``model``; return
    ``runs:/<id>/model``. :func:`localize_model` finds the folder again for the next stage."""
    run_id = mlflow.active_run().info.run_id
    mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts={"hf_model": str(hf_dir)},
        code_paths=[str(Path(findistill.__file__).parent)],
        input_example=pd.DataFrame({"text": example_texts}),
        model_config={"max_length": max_length},
        pip_requirements=model_requirements(),
    )
    return f"runs:/{run_id}/model"


def model_requirements() -> list[str]:
    """The pip requirements of a logged model: the installed torch, transformers, mlflow and seqeval
    pinned to the versions that trained and logged it (pandas and numpy unpinned)."""
    return [
        f"torch=={_version('torch')}", f"transformers=={_version('transformers')}", f"mlflow=={mlflow.__version__}",
        f"seqeval=={_version('seqeval')}", "pandas", "numpy",
    ]


def _version(package: str) -> str:
    """The installed version of ``package`` without a local build label (``2.13.0+cpu`` -> ``2.13.0``): the
    label names a wheel index (CPU, a CUDA build) and pip cannot install it from PyPI."""
    from importlib.metadata import version

    return version(package).split("+", 1)[0]


def _texts(model_input: Any) -> list[str]:
    """Accept a DataFrame with a ``text`` column, a list of strings or one string.

    MLflow turns a dict whose values are lists of strings (``{"text": ["a", "b"]}``, also a REST
    ``inputs`` payload) into a single row holding the list, so a cell that is a list is read as
    that many texts."""
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "columns"):
        if "text" not in model_input.columns:
            raise ValueError(f"expected a 'text' column, got columns {list(model_input.columns)}")
        texts: list[str] = []
        for cell in model_input["text"]:
            if isinstance(cell, str) or not hasattr(cell, "__iter__"):
                texts.append(str(cell))
            else:
                texts.extend(str(t) for t in cell)
        return texts
    return [str(t) for t in model_input]


class NerPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: artifact ``hf_model`` is a save_pretrained folder (model + tokenizer)."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = load_token_classifier(context.artifacts["hf_model"])
        self.model.eval()
        self.max_length = int((context.model_config or {}).get("max_length", 256))

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001
        """DataFrame ``text`` column (a list of str or one str also works) -> one list of entity spans per text.

        The DataFrame hint tells MLflow the input needs no schema of its own; :func:`_texts` reads it."""
        return tag_texts(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)


class FillMaskPyfunc(mlflow.pyfunc.PythonModel):
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
