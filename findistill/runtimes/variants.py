"""Inference variants of a token classifier and the folders that hold them.

A variant folder is a model folder as ``save_pretrained`` writes it (``config.json``, the tokenizer)
with the weights of its runtime: ``model.safetensors`` for PyTorch, ``model.onnx`` for ONNX Runtime.
``runtime.json`` says which variant it is, where it came from and how many parameters its source
has; a folder without it is a PyTorch fp32 model. :func:`load_inference_model` turns any of them
into a module that the evaluation, the latency measurement and the pyfunc call alike.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from findistill.models.loading import RUNTIME_FILE, load_token_classifier
from findistill.runtimes.onnx import ExportError, OnnxTokenClassifier, export_onnx, onnx_path, quantize_onnx


@dataclass(frozen=True)
class Variant:
    """``name`` as users write it; ``runtime`` (``pytorch`` or ``onnxruntime``) and ``precision`` (``fp32`` or
    ``int8``) as the runs' tags show them."""

    name: str
    runtime: str
    precision: str
    description: str

    @property
    def label(self) -> str:
        """``<runtime>-<precision>``, the ``findistill.runtime`` tag."""
        return f"{self.runtime}-{self.precision}"


PYTORCH_FP32 = Variant("pytorch", "pytorch", "fp32", "the model as trained, in PyTorch")
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("onnx", "onnxruntime", "fp32", "ONNX export (torch.export-based exporter) run by ONNX Runtime"),
    Variant("onnx-int8", "onnxruntime", "int8", "ONNX Runtime dynamic int8: int8 weights (MatMul, embeddings), "
            "activations quantized per batch"),
    Variant("torch-int8", "pytorch", "int8", "PyTorch dynamic int8 of every nn.Linear (torch.ao, deprecated), "
            "applied when the model is loaded; the fp32 weights are stored"),
)}


class VariantError(ValueError):
    """An unknown variant, or a folder that does not hold what its variant needs."""


class QualityError(ValueError):
    """A variant that loses more entity F1 against its source than the user allows."""


def variant_of(folder: str | os.PathLike) -> tuple[Variant, dict[str, Any]]:
    """The variant of a model folder and its ``runtime.json`` ({} for a plain PyTorch folder)."""
    path = Path(folder) / RUNTIME_FILE
    if not path.is_file():
        return PYTORCH_FP32, {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return VARIANTS[info["variant"]], info
    except (ValueError, KeyError, TypeError) as err:
        raise VariantError(f"{path}: expected a JSON object with 'variant' one of {', '.join(VARIANTS)} "
                           f"({err})") from err


def load_inference_model(folder: str | os.PathLike, *, threads: int | None = None,
                         trust_remote_code: bool = False) -> torch.nn.Module:
    """The model of a variant folder, ready for inference (eval mode, CPU).

    PyTorch fp32: the token classifier; ``torch-int8``: it, dynamically quantized on load;
    ONNX Runtime: an :class:`~findistill.runtimes.onnx.OnnxTokenClassifier` with ``threads`` intra-op
    threads (None: torch's current count).
    """
    variant, info = variant_of(folder)
    if variant.runtime == "onnxruntime":
        graph = onnx_path(folder)
        if not graph.is_file():
            raise VariantError(f"{folder}: a {variant.name} variant needs {graph.name}, which is missing")
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
        return OnnxTokenClassifier(graph, config, threads=threads, parameter_counts=info.get("parameters"))
    model = load_token_classifier(str(folder), trust_remote_code=trust_remote_code).eval()
    if variant.name == "torch-int8":
        model = quantize_torch_int8(model)
    return model


def quantize_torch_int8(model: PreTrainedModel) -> torch.nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` to int8 weights (CPU only).

    ``torch.ao.quantization`` is deprecated in favour of torchao; its dynamic quantization still runs in
    torch 2.13 and is kept here for comparison with ONNX Runtime's.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of torch.ao.quantization
        return torch.ao.quantization.quantize_dynamic(model.to("cpu").eval(), {torch.nn.Linear}, dtype=torch.qint8)


def write_variant(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str,
                  folder: str | os.PathLike, *, source: str, parameters: dict[str, int],
                  per_channel: bool = False, reduce_range: bool = False) -> dict[str, Any]:
    """Write variant ``name`` of ``model`` (a PyTorch token classifier) into ``folder`` and check that it loads.

    ``source`` (the model's reference) and ``parameters`` (its counts, ``costs.size.count_parameters``: an
    ONNX graph does not show them) go into ``runtime.json``, with the options and the versions of the
    libraries that made it. Returns that record. Raises VariantError for an unknown name, ExportError when
    the export, the quantization or loading the result fails.
    """
    if name not in VARIANTS:
        raise VariantError(f"variant: expected one of {', '.join(VARIANTS)}, got {name!r}")
    variant = VARIANTS[name]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    options: dict[str, Any] = {}
    if variant.runtime == "pytorch":
        model.save_pretrained(folder, safe_serialization=True)
    elif variant.precision == "fp32":
        export_onnx(model, tokenizer, onnx_path(folder))
    else:
        options = {"per_channel": per_channel, "reduce_range": reduce_range}
        with tempfile.TemporaryDirectory(prefix="findistill-export-") as tmp:
            export_onnx(model, tokenizer, Path(tmp) / "fp32.onnx")
            quantize_onnx(Path(tmp) / "fp32.onnx", onnx_path(folder), per_channel=per_channel,
                          reduce_range=reduce_range)
    record = {
        "variant": name, "runtime": variant.runtime, "precision": variant.precision, "source": source,
        "parameters": dict(parameters), "options": options, "versions": _versions(variant),
    }
    (folder / RUNTIME_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    try:
        load_inference_model(folder)
    except (ExportError, VariantError):
        raise
    except Exception as err:  # noqa: BLE001 - any load failure means the variant is unusable
        raise ExportError(f"{folder}: the {name} variant does not load back ({err})") from err
    return record


def _versions(variant: Variant) -> dict[str, str]:
    packages = ["torch", "transformers"] + (["onnx", "onnxruntime"] if variant.runtime == "onnxruntime" else [])
    return {p: version(p) for p in packages}
