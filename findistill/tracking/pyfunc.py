"""Models as MLflow pyfuncs: raw text in, entity spans (or mask fillings) out.

The Hugging Face folder travels inside the logged model (artifact ``hf_model``) with the
findistill code, so ``mlflow models serve`` needs nothing else. An NER model runs in the runtime
its folder holds (:mod:`findistill.runtimes`: ONNX Runtime for a ``model.onnx``, PyTorch
otherwise) with the thread count of its ``model_config`` (``threads``; 0: the runtime's default,
torch's intra-op count).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
import torch

import findistill
from findistill.evaluation.predict import fill_masks, tag_texts
from findistill.models.loading import load_masked_lm, load_tokenizer
from findistill.runtimes.variants import load_inference_model, variant_of


def log_ner_model(hf_dir: str | os.PathLike, *, max_length: int, example_texts: list[str]) -> str:
    """Log a model folder (``save_pretrained``, or a variant folder of :mod:`findistill.runtimes`) as an
    MLflow pyfunc NER model named ``model``; return its URI.

    The model answers a DataFrame with a ``text`` column with entity spans per text. Its
    ``model_config`` names the folder's runtime and ``threads`` (0; override it when loading with
    ``mlflow.pyfunc.load_model(uri, model_config={"threads": n})``).
    """
    runtime = variant_of(hf_dir)[0]
    return log_hf_pyfunc(hf_dir, NerPyfunc(), max_length=max_length, example_texts=example_texts,
                         extra_config={"threads": 0, "runtime": runtime.label},
                         onnxruntime=runtime.runtime == "onnxruntime")


def log_hf_pyfunc(hf_dir: str | os.PathLike, python_model: Any, *, max_length: int, example_texts: list[str],
                  extra_config: dict[str, Any] | None = None, onnxruntime: bool = False) -> str:
    """Log a save_pretrained folder (artifact ``hf_model``) wrapped by ``python_model`` as ``model``; return
    ``runs:/<id>/model``. :func:`localize_model` finds the folder again for the next stage."""
    run_id = mlflow.active_run().info.run_id
    mlflow.pyfunc.log_model(
        name="model",
        python_model=python_model,
        artifacts={"hf_model": str(hf_dir)},
        code_paths=[str(Path(findistill.__file__).parent)],
        input_example=pd.DataFrame({"text": example_texts}),
        model_config={"max_length": max_length, **(extra_config or {})},
        pip_requirements=model_requirements(onnxruntime),
    )
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

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001
        """DataFrame ``text`` column (a list of str or one str also works) -> one list of entity spans per text.

        The DataFrame hint tells MLflow the input needs no schema of its own; :func:`_texts` reads it."""
        return tag_texts(self.model, self.tokenizer, _texts(model_input), max_length=self.max_length)


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
