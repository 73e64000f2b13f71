"""Fine-tuning with the Trainer: learning happens, epochs are reported, an interrupted run resumes."""

from pathlib import Path

import pytest
from conftest import LABELS, shared_corpus
from transformers import set_seed

from findistill.data.corpus import Sentence
from findistill.data.splits import load_ner_data
from findistill.models.loading import load_token_classifier, load_tokenizer
from findistill.training.trainer import TrainSettings, train_token_classifier


@pytest.fixture(scope="module")
def finer_slice():
    return load_ner_data(shared_corpus("finer-ord"), max_sentences=48)


def _train(encoder_dir, data, out: Path, epochs: int, logged: list, resume: bool = True):
    set_seed(1)
    model = load_token_classifier(str(encoder_dir), data.labels)
    tokenizer = load_tokenizer(str(encoder_dir))
    settings = TrainSettings(epochs=epochs, batch_size=8, learning_rate=3e-3, max_length=64, patience=5, seed=1)
    summary = train_token_classifier(
        model, tokenizer, data.splits["train"], data.splits["validation"], data.labels, settings, out,
        on_epoch=lambda metrics, epoch: logged.append((epoch, metrics)), resume=resume, progress=False,
    )
    return model, summary


def test_loss_falls_and_each_epoch_is_reported(tiny_encoder_dir, finer_slice, tmp_path):
    logged: list = []
    _, summary = _train(tiny_encoder_dir, finer_slice, tmp_path / "ckpt", epochs=3, logged=logged)
    assert [epoch for epoch, _ in logged] == [1, 2, 3]
    losses = [metrics["train_loss"] for _, metrics in logged]
    assert losses[-1] < losses[0]
    assert all({"val_f1", "val_precision", "val_recall", "val_loss"} <= set(m) for _, m in logged)
    assert summary["epochs_run"] == 3 and summary["resumed_from"] is None
    assert summary["best_val_f1"] == max(m["val_f1"] for _, m in logged)


def test_interrupted_training_resumes_from_last_checkpoint(tiny_encoder_dir, finer_slice, tmp_path):
    out = tmp_path / "ckpt"
    _train(tiny_encoder_dir, finer_slice, out, epochs=1, logged=[])  # the "interrupted" run: 1 epoch saved
    (first,) = [p.name for p in out.glob("checkpoint-*")]
    steps_per_epoch = int(first.split("-")[1])
    logged: list = []
    _, summary = _train(tiny_encoder_dir, finer_slice, out, epochs=2, logged=logged)
    assert summary["resumed_from"].endswith(first)
    assert summary["epochs_run"] == 2
    # the new run replays epoch 1 from the checkpoint's history, then trains only epoch 2
    assert [epoch for epoch, _ in logged] == [1, 2]
    assert (out / f"checkpoint-{2 * steps_per_epoch}").is_dir()


def test_same_seed_same_model(tiny_encoder_dir, finer_slice, tmp_path):
    import torch

    a, _ = _train(tiny_encoder_dir, finer_slice, tmp_path / "a", epochs=1, logged=[], resume=False)
    b, _ = _train(tiny_encoder_dir, finer_slice, tmp_path / "b", epochs=1, logged=[], resume=False)
    assert torch.allclose(a.classifier.weight, b.classifier.weight)


def test_trainer_f1_equals_independent_evaluation(tiny_encoder_dir, finer_slice, tmp_path):
    """The per-epoch validation F1 (computed from the Trainer's batched, padded predictions) must be
    the F1 of the same model evaluated word by word; a reordering of batches would break it."""
    import torch

    from findistill.evaluation.predict import evaluate_ner
    from findistill.training.trainer import build_trainer

    set_seed(3)
    model = load_token_classifier(str(tiny_encoder_dir), finer_slice.labels)
    with torch.no_grad():  # a loud random head: varied tags, so some entities match by chance
        model.classifier.weight.normal_(0, 3.0)
    tokenizer = load_tokenizer(str(tiny_encoder_dir))
    settings = TrainSettings(max_length=24)  # short chunks: long sentences span several batches
    validation = finer_slice.splits["validation"] + finer_slice.splits["test"]
    trainer = build_trainer(model, tokenizer, finer_slice.splits["train"], validation, finer_slice.labels,
                            settings, tmp_path, progress=False)
    from_trainer = trainer.evaluate()
    independent = evaluate_ner(model, tokenizer, validation, max_length=24).scores
    assert independent["precision"] > 0  # the check below is not vacuous
    for key in ("precision", "recall", "f1"):
        assert from_trainer[f"eval_{key}"] == pytest.approx(independent[key], abs=1e-12), key


def _fake_cuda(monkeypatch, count: int) -> list:
    """Make torch report ``count`` CUDA devices; returns the list that records ``set_device`` calls."""
    import torch

    calls: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(torch.device(device)))
    return calls


def test_training_arguments_pin_the_cuda_device_asked_for(monkeypatch, tmp_path):
    """Without a GPU this checks what the Trainer would use: the arguments' device, no DataParallel,
    the current CUDA device and the device Accelerate places models and batches on."""
    import torch
    from accelerate import Accelerator

    from findistill.training.trainer import training_arguments

    calls = _fake_cuda(monkeypatch, count=2)
    args = training_arguments(TrainSettings(), tmp_path, device="cuda:1")
    assert args.device == torch.device("cuda", 1)
    assert args.n_gpu == 1 and not args.use_cpu  # one GPU, not nn.DataParallel over both
    assert calls[-1] == torch.device("cuda", 1)  # left as the current CUDA device
    assert Accelerator().device == torch.device("cuda", 1)  # what the Trainer's Accelerator would place on
    assert args.dataloader_pin_memory
    plain = training_arguments(TrainSettings(), tmp_path, device="cuda")
    assert plain.device == torch.device("cuda", 0) and plain.n_gpu == 1


def test_training_arguments_for_the_cpu_ignore_a_present_gpu(monkeypatch, tmp_path):
    import torch

    from findistill.training.trainer import training_arguments

    calls = _fake_cuda(monkeypatch, count=2)
    args = training_arguments(TrainSettings(), tmp_path, device="cpu")
    assert args.device == torch.device("cpu") and args.n_gpu == 0 and args.use_cpu
    assert not args.dataloader_pin_memory and calls == []


def test_a_cuda_device_that_is_not_there_or_another_kind_is_refused_naming_the_device(monkeypatch, tmp_path):
    from findistill.config import ValueProblem
    from findistill.training.trainer import training_arguments

    _fake_cuda(monkeypatch, count=2)
    with pytest.raises(ValueProblem, match=r"device: 'cuda:2' requested but 2 CUDA device"):
        training_arguments(TrainSettings(), tmp_path, device="cuda:2")
    with pytest.raises(ValueProblem, match=r"device: expected auto, cpu, cuda or cuda:N, got 'mps'"):
        training_arguments(TrainSettings(), tmp_path, device="mps")


def test_the_console_shows_one_line_per_epoch_not_the_raw_log_dicts(tiny_classifier, tmp_path, capsys):
    import copy

    from findistill.training.trainer import EpochProgress, build_trainer

    model, tokenizer = tiny_classifier
    train = [Sentence(["Acme", "Corp", "rose"], ["B-ORG", "I-ORG", "O"])] * 8
    trainer = build_trainer(copy.deepcopy(model), tokenizer, train, train[:2], LABELS,
                            TrainSettings(epochs=2, batch_size=4, patience=2), tmp_path)
    assert sum(isinstance(c, EpochProgress) for c in trainer.callback_handler.callbacks) == 1
    trainer.train()
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("train loss" in line and "val f1" in line for line in lines)
    assert "'eval_loss'" not in out.out + out.err


def test_a_checkpoint_left_half_written_is_deleted_and_the_previous_one_resumes(tmp_path):
    from findistill.training.trainer import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") is None
    assert last_complete_checkpoint(tmp_path) is None
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-6").mkdir()  # killed while writing: weights, no trainer state
    (tmp_path / "checkpoint-6" / "model.safetensors").write_bytes(b"\0" * 8)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-4"]
