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

import findistill
from findistill.evaluation.predict import fill_masks, tag_texts
from findistill.models.loading import load_token_classifier, load_tokenizer


def log_ner_model(hf_dir: str | os.PathLike, *, max_length: int, example_texts: list[str]) -> str:
    """Log a save_pretrained folder as an MLflow pyfunc NER model named ``model``; return its URI.

    The model answers a DataFrame with a ``text`` column with entity spans per text.
    """
    return log_hf_pyfunc(hf_dir, NerPyfunc(), max_length=max_length, example_texts=example_texts)


def log_hf_pyfunc(hf_dir: str | os.PathLike, python_model: Any, *, max_length: int, example_texts: list[str]) -> str:
    """Log a save_pretrained folder (artifact ``hf_model``) wrapped by ``python_model`` as ``model``; return
    ``runs:/<id>/model``. :func:`localize_model` finds the folder again for the next stage."""
    import pandas as pd

    run_id = mlflow.active_run().info.run_id
    requirements = [
        "torch==2.13.0", f"transformers=={_version('transformers')}", f"mlflow=={mlflow.__version__}",
        f"seqeval=={_version('seqeval')}", "pandas", "numpy",
    ]
    mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts={"hf_model": str(hf_dir)},
        code_paths=[str(Path(findistill.__file__).parent)],
        input_example=pd.DataFrame({"text": example_texts}),
        model_config={"max_length": max_length},
        pip_requirements=requirements,
    )
    return f"runs:/{run_id}/model"


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _texts(model_input: Any) -> list[str]:
    """Accept a DataFrame with a ``text`` column, a list of strings or one string."""
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "columns"):
        if "text" not in model_input.columns:
            raise ValueError(f"expected a 'text' column, got columns {list(model_input.columns)}")
        return [str(t) for t in model_input["text"]]
    return [str(t) for t in model_input]


class NerPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: artifact ``hf_model`` is a save_pretrained folder (model + tokenizer)."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = load_token_classifier(context.artifacts["hf_model"])
        self.model.eval()
        self.max_length = int((context.model_config or {}).get("max_length", 256))

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        """DataFrame ``text`` column (or list of str) -> one list of entity spans per text."""
        return tag_texts(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)


class FillMaskPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of an adapted masked LM (artifact ``hf_model``): texts with mask tokens in,
    the top candidates of each mask out. ``finetune``/``distill`` use the folder inside as an encoder."""

    def load_context(self, context):  # noqa: ANN001 (MLflow signature)
        from transformers import AutoModelForMaskedLM

        self.tokenizer = load_tokenizer(context.artifacts["hf_model"])
        self.model = AutoModelForMaskedLM.from_pretrained(context.artifacts["hf_model"], use_safetensors=True)
        self.model.eval()
        self.max_length = int((context.model_config or {}).get("max_length", 128))

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        return fill_masks(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)
