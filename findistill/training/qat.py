"""Quantization-aware training for ONNX Runtime's dynamic int8 (the ``quantize`` stage's ``onnx-int8``).

``onnxruntime.quantization.quantize_dynamic`` (:func:`findistill.runtimes.onnx.quantize_onnx`) turns every
``nn.Linear`` of an exported model into a MatMul whose weight is stored as int8, symmetric (range
[-127, 127], or [-64, 64] with ``reduce_range``), with one scale per output unit (``per_channel``) or per
matrix, and whose input is quantized to uint8 on the fly: one scale and zero point per tensor, from its
minimum and maximum (both widened to include 0). Every embedding table (a Gather) is stored as uint8 with
one scale and zero point per table, from its minimum and maximum; a MatMul fed by a Gather (the
projection of factorised word embeddings) takes the table's uint8 rows as they are.

:func:`attach_fake_quant` makes a PyTorch model compute with the same rounding: each such weight, table
and input is quantized and dequantized in its forward pass. The logits then match ONNX Runtime's int8
model to float precision, except with 8-bit weights and a scale per output unit, where ONNX Runtime's
integer kernels differ slightly (on a random 2-layer model: 0.1% of the logits' range, against 1% for
the float model). The gradients go straight through the rounding (the straight-through estimator of
:func:`torch.fake_quantize_per_tensor_affine`, zero outside the clipping range), so training adapts the
weights to the rounding. The weights themselves stay float32: :func:`detach_fake_quant` restores the
plain forward passes, and the model saves, loads and is quantized as any other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from findistill.models.factorised import FactorisedEmbedding

#: the attribute that marks a module computing with simulated quantization
MARK = "_findistill_fake_quant"


@dataclass(frozen=True)
class QuantScheme:
    """How ``quantize_dynamic`` stores weights: one scale per output unit (``per_channel``) or per
    matrix; 8-bit weights or 7 (``reduce_range``)."""

    per_channel: bool = True
    reduce_range: bool = False

    @property
    def weight_max(self) -> int:
        """The largest int8 weight (the range is symmetric)."""
        return 64 if self.reduce_range else 127

    def describe(self) -> str:
        """What the rounding simulates, in words."""
        scales = "a scale per output unit" if self.per_channel else "a scale per matrix"
        return f"{7 if self.reduce_range else 8}-bit weights ({scales}) and uint8 inputs"


def fake_quant_weight(weight: torch.Tensor, scheme: QuantScheme) -> torch.Tensor:
    """``weight`` (out x in) rounded as a symmetric int8 weight and dequantized: scale max|w| / 127
    (``scheme.weight_max``) per row with ``per_channel``, else over the matrix."""
    top = scheme.weight_max
    absmax = weight.detach().abs().amax(dim=1) if scheme.per_channel else weight.detach().abs().amax()
    scale = (absmax / top).clamp_min(torch.finfo(torch.float32).tiny).float()
    if scheme.per_channel:
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -top, top)
    zero = torch.zeros(1, dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_tensor_affine(weight, scale.reshape(1), zero, -top, top)


def fake_quant_uint8(values: torch.Tensor) -> torch.Tensor:
    """``values`` rounded as uint8 with one scale and zero point from their minimum and maximum, both
    widened to include 0 (ONNX's DynamicQuantizeLinear, and how tables are stored), and dequantized; in
    float32, returned in ``values``' dtype (bf16 or fp16 under autocast)."""
    dtype, values = values.dtype, values.float()
    low = values.detach().min().clamp(max=0)
    high = values.detach().max().clamp(min=0)
    scale = ((high - low) / 255).clamp_min(torch.finfo(torch.float32).tiny).reshape(1)
    zero = torch.round(-low / scale).clamp(0, 255).to(torch.int32).reshape(1)
    return torch.fake_quantize_per_tensor_affine(values, scale, zero, 0, 255).to(dtype)


def _linear_forward(module: nn.Linear, scheme: QuantScheme, quantize_inputs: bool):
    def forward(inputs: torch.Tensor) -> torch.Tensor:
        if quantize_inputs:
            inputs = fake_quant_uint8(inputs)
        return F.linear(inputs, fake_quant_weight(module.weight, scheme), module.bias)
    return forward


def _embedding_forward(module: nn.Embedding):
    def forward(ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, fake_quant_uint8(module.weight), module.padding_idx, module.max_norm,
                           module.norm_type, module.scale_grad_by_freq, module.sparse)
    return forward


def attach_fake_quant(model: nn.Module, scheme: QuantScheme = QuantScheme()) -> int:
    """Make every ``nn.Linear`` and ``nn.Embedding`` of ``model`` compute with the rounding of its
    dynamic int8 model (module docstring); modules attached later (the hidden-state loss's projections)
    are left alone. Returns the number of modules changed; :func:`detach_fake_quant` undoes it."""
    fed_by_tables = {id(module.project) for module in model.modules() if isinstance(module, FactorisedEmbedding)}
    changed = 0
    for module in model.modules():
        if getattr(module, MARK, False):
            continue
        if isinstance(module, nn.Linear):
            module.forward = _linear_forward(module, scheme, quantize_inputs=id(module) not in fed_by_tables)
        elif isinstance(module, nn.Embedding):
            module.forward = _embedding_forward(module)
        else:
            continue
        setattr(module, MARK, True)
        changed += 1
    return changed


def detach_fake_quant(model: nn.Module) -> int:
    """The plain float forward passes back on every module :func:`attach_fake_quant` changed; returns
    how many."""
    restored = 0
    for module in model.modules():
        if getattr(module, MARK, False):
            del module.forward
            delattr(module, MARK)
            restored += 1
    return restored
