"""Token classifiers in ONNX Runtime: export (``torch.onnx``, the torch.export-based exporter), dynamic int8
quantization (``onnxruntime.quantization``) and a module that runs the graph like a PyTorch model.

The graph takes the tokenizer's tensors (``input_ids``, ``attention_mask``, and ``token_type_ids``
where the model uses them), each ``[batch, sequence]`` int64 with both dimensions dynamic, and
returns ``logits: [batch, sequence, labels]`` float32.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import TokenClassifierOutput

ONNX_FILE = "model.onnx"
#: ONNX opset of the export (the torch.export-based exporter's own default in torch 2.13)
OPSET = 18
#: largest |logit| difference between the export and the PyTorch model on the probe batch
EXPORT_TOLERANCE = 1e-3
#: text used to trace the export: two sentences of different length, so that neither the batch nor
#: the sequence dimension is traced as a constant
PROBE_WORDS = [
    ["Shares", "of", "Harbor", "Point", "Capital", "rose", "3", "%", "in", "New", "York", "on", "Tuesday", "."],
    ["Lindqvist", "Freight", "AB", "fell", "."],
]


class ExportError(RuntimeError):
    """A model that could not be exported, or whose export ONNX Runtime cannot load or run correctly."""


class _Logits(torch.nn.Module):
    """``model(**inputs).logits`` with the inputs named in the signature (torch.export traces named arguments)."""

    def __init__(self, model: PreTrainedModel, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.model(**{n: given[n] for n in self.names}).logits


def graph_input_names(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The tokenizer outputs the model takes, in the tokenizer's order (``token_type_ids`` only for models
    that have token types)."""
    taken = set(inspect.signature(model.forward).parameters)
    names = [n for n in tokenizer.model_input_names if n in taken]
    if "input_ids" not in names:
        raise ExportError(f"{type(model).__name__} takes none of the tokenizer's inputs {tokenizer.model_input_names}")
    return names


def probe_batch(tokenizer: PreTrainedTokenizerBase, names: list[str], max_length: int = 64) -> dict[str, torch.Tensor]:
    """The padded probe sentences as the model's inputs ``[2, sequence]``."""
    encoded = tokenizer(PROBE_WORDS, is_split_into_words=True, truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt")
    return {n: encoded[n] for n in names}


def export_onnx(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | os.PathLike) -> None:
    """Export ``model`` (a token classifier, on CPU, eval mode) to the ONNX file ``path`` and check it.

    The check runs the file in ONNX Runtime on the probe batch: the logits must match PyTorch's within
    :data:`EXPORT_TOLERANCE`. Raises ExportError (with the exporter's or ONNX Runtime's reason) otherwise.
    """
    model = model.to("cpu").eval()
    names = graph_input_names(model, tokenizer)
    inputs = probe_batch(tokenizer, names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Logits(model, names), (), str(path), kwargs=inputs, dynamo=True, opset_version=OPSET,
                external_data=False,
                input_names=names, output_names=["logits"],
                dynamic_shapes={n: {0: batch, 1: sequence} for n in names}, verbose=False,
            )
    except Exception as err:  # the exporter raises many types; the reason is what the user needs
        raise ExportError(f"torch.onnx could not export {type(model).__name__}: {_first_line(err)}") from err
    with torch.inference_mode():
        expected = model(**inputs).logits.numpy()
    got = run_graph(path, {k: v.numpy() for k, v in inputs.items()})
    difference = float(np.abs(got - expected).max())
    if not difference <= EXPORT_TOLERANCE:
        raise ExportError(f"{path}: ONNX Runtime's logits differ from PyTorch's by {difference:.3g} on the probe "
                          f"batch (at most {EXPORT_TOLERANCE} expected)")


def quantize_onnx(source: str | os.PathLike, target: str | os.PathLike, *, per_channel: bool,
                  reduce_range: bool) -> None:
    """Dynamic int8 quantization of an exported graph (``onnxruntime.quantization.quantize_dynamic``).

    MatMul weights and the embedding tables (Gather) are stored as int8 with a scale per tensor (per
    output channel with ``per_channel``); activations are quantized to uint8 on the fly, per batch.
    ``reduce_range`` keeps weights to 7 bits, which avoids overflow in the uint8 x int8 products of
    CPUs without VNNI instructions (AVX2, AVX-512 without VNNI).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        try:
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel,
                             reduce_range=reduce_range)
        except Exception as err:  # onnxruntime.quantization raises RuntimeError/ValueError/onnx errors
            raise ExportError(f"onnxruntime could not quantize {source}: {_first_line(err)}") from err


def session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session of ``path`` with every graph optimisation, ``threads`` intra-op threads
    (None: torch's current count, so both runtimes are measured with the same threads) and one inter-op
    thread. Raises ExportError when ONNX Runtime cannot load the file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ExportError(f"ONNX Runtime cannot load {path}: {_first_line(err)}") from err


def run_graph(path: str | os.PathLike, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Logits of the graph ``path`` for ``feeds`` (one-off session; raises ExportError when it cannot run)."""
    graph = session(path)
    try:
        return graph.run(["logits"], feeds)[0]
    except Exception as err:
        raise ExportError(f"ONNX Runtime cannot run {path}: {_first_line(err)}") from err


class OnnxTokenClassifier(torch.nn.Module):
    """A token classifier whose forward pass runs an ONNX graph in ONNX Runtime on CPU.

    Called like the PyTorch model (the tokenizer's tensors as keyword arguments) it returns a
    ``TokenClassifierOutput`` with ``logits: [batch, sequence, labels]`` (float32, CPU), so code written
    for the PyTorch model (evaluation, latency, the pyfunc) runs it unchanged. It has no torch
    parameters: ``parameter_counts`` holds the counts of the model the graph was made from.
    """

    cpu_only = True  # the CPU execution provider: no GPU measurement

    def __init__(self, path: str | os.PathLike, config, *, threads: int | None = None,
                 parameter_counts: dict[str, int] | None = None):
        super().__init__()
        self.config = config
        self.session = session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.parameter_counts = dict(parameter_counts or {})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False,
                **unused) -> TokenClassifierOutput:
        if output_hidden_states:
            raise ValueError("an ONNX Runtime model gives logits only (no hidden states)")
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if given["attention_mask"] is None:
            given["attention_mask"] = torch.ones_like(input_ids)
        if given["token_type_ids"] is None:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        feeds = {n: given[n].detach().cpu().numpy().astype(np.int64, copy=False) for n in self.input_names}
        return TokenClassifierOutput(logits=torch.from_numpy(self.session.run(["logits"], feeds)[0]))


def _first_line(err: BaseException) -> str:
    """The first line of the innermost cause of ``err`` (the exporter wraps the reason in advice)."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = f"{type(err).__name__}: {str(err).strip()}"
    return text.splitlines()[0][:300]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and the quantizer's progress lines and advice (the stage reports the result)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            yield
    finally:
        logging.disable(previous)


def onnx_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / ONNX_FILE
