"""Training spread over processes (``torchrun``) and the arithmetic it runs in.

A stage started by ``torchrun --nproc_per_node N`` runs in N processes that the launcher numbers with
the environment variables ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; the Hugging Face Trainer wraps
the model in DistributedDataParallel (gloo on CPU, nccl on GPU) and gives each process a shard of
every batch. What the stages add: only rank 0 logs to MLflow and registers (:func:`is_main_process`),
work that all ranks need but one can do (the teacher's cached outputs, deleting a half-written
checkpoint) runs on rank 0 first and is read by the others (:func:`main_process_first`), and at the
end the ranks prove they hold the same weights (:func:`check_ranks_agree`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

import torch

from findistill.config import ValueProblem


def world_size() -> int:
    """Number of processes of this training (1 without a distributed launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 without a distributed launcher)."""
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """True in the one process that logs to MLflow, evaluates and registers."""
    return rank() == 0


def _state(device: str = "cpu"):
    """Accelerate's process state (it starts the process group under ``torchrun``: gloo for ``device``
    cpu, nccl for cuda). The Trainer later finds the same state."""
    from accelerate import PartialState

    return PartialState(cpu=torch.device(device).type == "cpu")


@contextlib.contextmanager
def main_process_first(device: str = "cpu") -> Iterator[None]:
    """Rank 0 runs the block first; the others enter it once rank 0 has left it (so they can read what it
    wrote). A plain block without a distributed launcher."""
    if not is_distributed():
        yield
        return
    with _state(device).main_process_first():
        yield


def wait_for_everyone(device: str = "cpu") -> None:
    """A barrier over all ranks (nothing without a distributed launcher)."""
    if is_distributed():
        _state(device).wait_for_everyone()


def end_process_group() -> None:
    """Close this process's process group once its stage has finished on every rank. Gloo's worker
    threads still alive at interpreter exit can abort the process (SIGABRT, "terminate called without an
    active exception") after all its work succeeded; destroying the group first stops them. Called on
    success only: a rank that failed leaves without waiting for the others."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_ranks_agree(model: torch.nn.Module, device: str = "cpu") -> str:
    """The digest of ``model``'s weights, after checking that every rank holds the same (raises
    RuntimeError naming the ranks that differ). One process: just the digest."""
    digest = weights_digest(model)
    if not is_distributed():
        return digest
    _state(device)
    gathered: list[str | None] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, digest)
    differing = [i for i, d in enumerate(gathered) if d != gathered[0]]
    if differing:
        raise RuntimeError(f"after training, ranks {differing} hold different weights from rank 0: "
                           "the processes did not train as one model")
    return digest


def resolve_precision(precision: str, device: str) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``precision`` on ``device``: ``auto`` is bf16 on a GPU that
    supports it, else fp32. Raises ValueProblem for fp16 off CUDA and bf16 on a GPU without it."""
    on_gpu = torch.device(device).type == "cuda"
    if precision == "auto":
        return "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and not on_gpu:
        raise ValueProblem("precision", "fp16 needs a CUDA device (its loss scaling is CUDA-only); on CPU use "
                           "bf16 or fp32")
    if precision == "bf16" and on_gpu and not torch.cuda.is_bf16_supported():
        raise ValueProblem("precision", f"{torch.cuda.get_device_name(torch.device(device))} has no bfloat16; "
                           "use fp16 or fp32")
    return precision
