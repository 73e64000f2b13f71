"""What a model weighs: parameters (embeddings / encoder, tied weights once) and size on disk (MB = 1e6 bytes).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".onnx")
MB = 1e6  # bytes
_ENCODER_ATTRS = ("encoder", "transformer", "layers", "layer")  # BERT-like, DistilBERT, others


def _module_tensors(module: torch.nn.Module | None) -> dict[object, int]:
    """Unique weight tensors of ``module`` as {identity key: number of elements} ({} for None).

    Shared (tied) parameters appear once: keyed by storage address and shape, so two Parameter
    objects viewing the same memory also count once. Dynamically quantized modules keep their
    weights packed outside ``parameters()`` (``weight()`` / ``bias()`` are methods); those are
    counted too so an int8 model reports the same parameter count as its float original.
    """
    tensors: dict[object, int] = {}
    if module is None:
        return tensors
    for p in module.parameters():
        tensors[_storage_key(p)] = p.numel()
    for m in module.modules():
        for name in ("weight", "bias"):
            accessor = getattr(m, name, None)
            if callable(accessor) and not isinstance(accessor, torch.Tensor):  # packed weight
                try:
                    t = accessor()
                except Exception:  # noqa: BLE001 - not a weight accessor after all
                    continue
                if isinstance(t, torch.Tensor):  # a fresh unpacked copy: key by its owner
                    tensors[("packed", id(m), name)] = t.numel()
    return tensors


def _storage_key(t: torch.Tensor) -> object:
    """Identity of a tensor's memory: tensors viewing the same storage get the same key."""
    try:
        ptr = t.data_ptr() if t.device.type != "meta" else 0
    except (RuntimeError, NotImplementedError):  # tensor subclasses without plain storage
        ptr = 0
    return (ptr, tuple(t.shape)) if ptr else ("id", id(t))


def _numel(module: torch.nn.Module | None) -> int:
    """Number of unique parameters in ``module`` (0 for None)."""
    return sum(_module_tensors(module).values())


def _embedding_module(base: torch.nn.Module, model: torch.nn.Module) -> torch.nn.Module | None:
    embeddings = getattr(base, "embeddings", None)
    if isinstance(embeddings, torch.nn.Module):
        return embeddings
    get = getattr(model, "get_input_embeddings", None)
    return get() if callable(get) else None


def _encoder_module(base: torch.nn.Module) -> torch.nn.Module | None:
    for name in _ENCODER_ATTRS:
        module = getattr(base, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Count a model's parameters by part.

    Returns:
        ``params_total``: all unique parameters (tied weights counted once), head included;
        ``params_embedding``: the base model's embeddings module (for BERT: word, position and
        token-type embeddings and their LayerNorm); without one, the input embedding matrix;
        ``params_encoder``: the transformer layers (``base_model.encoder``, or DistilBERT's
        ``transformer``); without such a module, every base-model parameter outside the
        embeddings. The task head (and a pooler) count in the total only.

    A model that runs outside torch (an ONNX Runtime graph) carries the counts of the model it was made
    from as ``parameter_counts``; those are returned.
    """
    counts = getattr(model, "parameter_counts", None)
    if counts:
        return {k: int(counts[k]) for k in ("params_total", "params_embedding", "params_encoder")}
    base = getattr(model, "base_model", None)
    base = model if base is None else base
    emb = _module_tensors(_embedding_module(base, model))
    enc_module = _encoder_module(base)
    if enc_module is not None:
        enc = _module_tensors(enc_module)
    else:
        enc = {k: n for k, n in _module_tensors(base).items() if k not in emb}
    return {
        "params_total": _numel(model),
        "params_embedding": sum(emb.values()),
        "params_encoder": sum(enc.values()),
    }


def model_size_mb(path: str | os.PathLike) -> float:
    """Size on disk in MB (1e6 bytes) of the weights of a saved model.

    ``path`` is a folder (every ``*.safetensors``, ``*.bin``, ``*.pt``, ``*.onnx`` under it,
    recursively, so an MLflow model folder works too; tokenizer and config files are ignored)
    or a single weight file.

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no weight file.
    """
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / MB
    if not path.is_dir():
        raise FileNotFoundError(f"model path {path} does not exist")
    files = [f for f in path.rglob("*") if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)]
    if not files:
        raise FileNotFoundError(
            f"no weight file ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}) under {path}"
        )
    return sum(f.stat().st_size for f in files) / MB


def saved_size_mb(model: torch.nn.Module) -> float:
    """Save ``model`` to a temporary folder (safetensors) and return its weights' size in MB.

    Models that ``save_pretrained`` cannot serialise (e.g. dynamically quantized ones, whose
    packed weights safetensors rejects) are measured as a ``torch.save`` of their state dict.
    """
    with tempfile.TemporaryDirectory(prefix="findistill-size-") as tmp:
        if hasattr(model, "save_pretrained"):
            try:
                model.save_pretrained(tmp, safe_serialization=True)
                return model_size_mb(tmp)
            except Exception as err:  # noqa: BLE001 - any serialisation failure → fallback
                logger.warning("save_pretrained failed (%s); measuring torch.save instead", err)
        target = Path(tmp) / "state_dict.pt"
        torch.save(model.state_dict(), target)
        return model_size_mb(target)
