"""``finetune``: the stage trains on the device it is given."""

from __future__ import annotations

import mlflow
import torch

import findistill.training.trainer as trainer_module
from findistill.config import parse_params
from findistill.stages import finetune


def test_device_cpu_trains_on_the_cpu_even_where_cuda_is_available(mlflow_store, tiny_encoder_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cuda_calls: list = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: cuda_calls.append(device))
    # each checkpoint holds the CUDA random state whenever CUDA is present; this build has none to read
    monkeypatch.setattr(torch.cuda.random, "get_rng_state", lambda device="cuda": torch.zeros(8, dtype=torch.uint8))
    seen: dict = {}
    real_fit = trainer_module.fit

    def spy_fit(trainer, output_dir, **kwargs):  # what the Trainer trained on, read as it finishes
        summary = real_fit(trainer, output_dir, **kwargs)
        seen.update(device=trainer.args.device, n_gpu=trainer.args.n_gpu, accelerator=trainer.accelerator.device,
                    parameters={p.device for p in trainer.model.parameters()}, steps=trainer.state.global_step)
        return summary

    monkeypatch.setattr(trainer_module, "fit", spy_fit)
    config = parse_params(finetune.Config, {
        "model": str(tiny_encoder_dir), "data": "sample", "max_sentences": "30", "epochs": "1", "batch_size": "8",
        "max_length": "64", "device": "cpu", "measure_resources": "false",
    })
    run_id = finetune.run(config)
    assert seen["steps"] > 0  # it did train
    assert seen["device"] == torch.device("cpu") and seen["n_gpu"] == 0
    assert seen["accelerator"] == torch.device("cpu")
    assert seen["parameters"] == {torch.device("cpu")}
    assert cuda_calls == []  # transformers selects a CUDA device with set_device; nothing did
    assert "test_f1" in mlflow.get_run(run_id).data.metrics
