"""Training over processes: ``torchrun`` with DistributedDataParallel on CPU (gloo) gives one model, one MLflow
run and a teacher computed once; the arithmetic a training runs in (``precision``)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from findistill.config import ValueProblem
from findistill.data.splits import load_ner_data
from findistill.training.distill import cached_word_outputs
from findistill.training.distributed import resolve_precision
from findistill.training.trainer import TrainSettings, training_arguments

#: two ranks build a model each and compare: rank 1's differs when DIFFER is set
AGREE = """
import os, torch
from transformers import BertConfig, BertModel
from findistill.training.distributed import check_ranks_agree, end_process_group
torch.manual_seed(1 if os.environ.get("DIFFER") and os.environ["RANK"] == "1" else 0)
model = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                             intermediate_size=8))
print("digest", check_ranks_agree(model))
end_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(differ: bool) -> list[subprocess.CompletedProcess]:
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "DIFFER": "1" if differ else ""}
        procs.append(subprocess.Popen([sys.executable, "-c", AGREE], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]


def test_ranks_holding_different_weights_are_caught():
    same = _two_ranks(differ=False)
    assert [p.returncode for p in same] == [0, 0], same[0].stderr[-1500:]
    assert same[0].stdout == same[1].stdout and same[0].stdout.startswith("digest ")
    differ = _two_ranks(differ=True)
    assert all(p.returncode != 0 for p in differ)
    assert "ranks [1] hold different weights from rank 0" in differ[0].stderr


def _torchrun(stage: str, params: dict[str, str], cwd) -> subprocess.CompletedProcess:
    argv = [part for k, v in params.items() for part in (f"--{k}", v)]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "findistill", stage, *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_torchrun_trains_one_model_in_one_run_and_computes_the_teacher_once(mlflow_store, tiny_encoder_dir,
                                                                           tmp_path):
    common = {"data": "sample", "max_sentences": "120", "epochs": "2", "batch_size": "8", "max_length": "64",
              "device": "cpu", "measure_resources": "false"}
    finetuned = _torchrun("finetune", {**common, "model": str(tiny_encoder_dir),
                                       "registered_model_name": "fin-ner"}, tmp_path)
    assert finetuned.returncode == 0, finetuned.stderr[-3000:]
    client = MlflowClient()
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])  # rank 1 logged nowhere
    assert run.info.status == "FINISHED"
    assert run.data.tags["findistill.world_size"] == "2"  # both ranks checked they hold these weights
    assert len(run.data.tags["findistill.weights_sha256"]) == 64
    assert [v.version for v in client.search_model_versions("name='fin-ner'")] == [1]  # registered once
    train = len(load_ner_data("sample", max_sentences=120).splits["train"])
    # each rank trained on half of every epoch's batches
    assert run.data.metrics["train_steps"] == 2 * math.ceil(train / (2 * 8))

    # the per-epoch validation F1 was gathered from both ranks in sentence order: one process scoring the
    # best epoch's model on validation finds the same F1
    from findistill.cli import main
    assert main(["evaluate", "--model", f"runs:/{run.info.run_id}/model", "--data", "sample", "--max_sentences",
                 "120", "--split", "validation", "--max_length", "64", "--device", "cpu",
                 "--measure_resources", "false"]) == 0
    (evaluation,) = [r for r in client.search_runs([run.info.experiment_id]) if r.info.run_id != run.info.run_id]
    assert evaluation.data.metrics["validation_f1"] == pytest.approx(run.data.metrics["best_val_f1"], abs=1e-12)

    distilled = _torchrun("distill", {**common, "teacher": f"runs:/{run.info.run_id}/model",
                                      "student_layers": "1", "transfer_data": "augment",
                                      "transfer_ratio": "0.5"}, tmp_path)
    assert distilled.returncode == 0, distilled.stderr[-3000:]
    output = distilled.stdout
    assert output.count("computed and stored in") == 2  # labelled and transfer sentences, on rank 0 only
    assert output.count("read from") == 2  # rank 1 read both
    students = [r for r in client.search_runs([run.info.experiment_id]) if r.data.tags.get("findistill.stage")
                == "distill"]
    assert len(students) == 1 and students[0].info.status == "FINISHED"


def test_stored_teacher_outputs_read_back_equal_and_are_not_recomputed(tmp_path):

    from findistill.models.words import WordOutputs

    rng = np.random.default_rng(0)
    sentences = [["a", "b"], ["c"], ["d", "e", "f"]]
    outputs = WordOutputs([rng.normal(size=(len(s), 3)).astype(np.float32) for s in sentences],
                          [rng.normal(size=(2, len(s), 4)).astype(np.float16) for s in sentences],
                          [np.array([True] * (len(s) - 1) + [False]) for s in sentences])
    calls = []
    first = cached_word_outputs(tmp_path, sentences, ["teacher", "64"], lambda: calls.append(1) or outputs)
    again = cached_word_outputs(tmp_path, sentences, ["teacher", "64"], lambda: calls.append(1) or outputs)
    assert calls == [1]
    for read in (first, again):
        for name in ("logits", "hidden", "present"):
            assert len(getattr(read, name)) == len(sentences)
            assert all(np.array_equal(a, b) and a.dtype == b.dtype
                       for a, b in zip(getattr(read, name), getattr(outputs, name), strict=True))
    assert isinstance(again.logits[0], np.memmap)  # read from disk on use, not loaded whole
    other = cached_word_outputs(tmp_path, sentences, ["teacher", "128"], lambda: calls.append(2) or outputs)
    assert calls == [1, 2] and len(other.logits) == 3  # another key (max_length) is not the stored one


def test_precision_maps_to_the_trainer_and_refuses_what_the_device_cannot_do(tmp_path):
    args = training_arguments(TrainSettings(precision="bf16"), tmp_path, device="cpu", progress=False)
    assert args.bf16 and not args.fp16
    assert not training_arguments(TrainSettings(precision="auto"), tmp_path, device="cpu", progress=False).bf16
    assert resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(ValueProblem, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")


def test_stages_that_run_in_one_process_refuse_a_distributed_launch(monkeypatch, capsys):
    from findistill.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["search", "--teacher", "x"]) == 2
    assert "search runs in one process; of the stages, finetune, distill, adapt run under torchrun" in (
        capsys.readouterr().err)
