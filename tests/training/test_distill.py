"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

import copy

import numpy as np
import pytest
import torch
from conftest import LABELS, wordpiece_tokenizer
from tiny_bert import SENTENCES, bert_classifier

from findistill.config import ValueProblem
from findistill.data.splits import load_ner_data
from findistill.models.students import build_student, map_layers
from findistill.models.words import pool_words, word_outputs
from findistill.training.distill import (
    DistillCollator,
    LossSettings,
    build_examples,
    distill_student,
    distillation_losses,
    without_attention_dropout,
)
from findistill.training.kd_losses import kd_loss, words_present
from findistill.training.trainer import TrainSettings
from findistill.training.transfer_sets import swap_mentions

LABEL2ID = {label: i for i, label in enumerate(LABELS)}




def test_word_pooling_aligns_words_split_differently_by_two_tokenizers():
    # words: "nasdaq lender said"; teacher: [CLS] nas ##da ##q lend ##er said [SEP];
    # student: [CLS] nasdaq lender sa ##id [SEP]. The student truncates after "lender" in a second copy.
    teacher_index = torch.tensor([[-1, 0, 0, 0, 1, 1, 2, -1]])
    student_index = torch.tensor([[-1, 0, 1, 2, 2, -1], [-1, 0, 1, -1, -1, -1]])
    teacher_states = torch.arange(8.0).reshape(1, 8, 1)  # token t carries the value t
    student_states = torch.arange(6.0).reshape(1, 6, 1).repeat(2, 1, 1)
    assert pool_words(teacher_states, teacher_index, 3, "first").flatten().tolist() == [1.0, 4.0, 6.0]
    assert pool_words(teacher_states, teacher_index, 3, "mean").flatten().tolist() == [2.0, 4.5, 6.0]
    assert pool_words(student_states, student_index, 3, "first").squeeze(-1).tolist() == [[1, 2, 3], [1, 2, 0]]
    assert pool_words(student_states, student_index, 3, "mean").squeeze(-1).tolist() == [[1, 2, 3.5], [1, 2, 0]]
    both = words_present(student_index, 3) & words_present(teacher_index, 3)
    assert both.tolist() == [[True, True, True], [True, True, False]]  # "said" was cut on the student side
    # the word the student never saw does not change the loss
    s_logits = torch.randn(2, 3, 4)
    t_logits = torch.randn(1, 3, 4).repeat(2, 1, 1)
    loss = kd_loss(s_logits, t_logits, both, 1.0)
    t_changed = t_logits.clone()
    t_changed[1, 2] = 100.0
    assert kd_loss(s_logits, t_changed, both, 1.0).item() == pytest.approx(loss.item())


def test_examples_carry_both_tokenizations_of_the_same_words():
    teacher_tok = wordpiece_tokenizer(["nas", "##da", "##q", "lend", "##er", "said"])
    student_tok = wordpiece_tokenizer(["nasdaq", "lender", "sa", "##id"])
    words, tags = [["Nasdaq", "lender", "said"]], [["B-ORG", "O", "O"]]
    (example,) = build_examples(student_tok, words, tags, LABEL2ID, 16, teacher_tokenizer=teacher_tok)
    assert example["word_index"] == [-1, 0, 1, 2, 2, -1]
    assert example["t_word_index"] == [-1, 0, 0, 0, 1, 1, 2, -1]
    assert example["word_labels"] == [LABEL2ID["B-ORG"], 0, 0]
    # the teacher is cut at 5 sub-tokens: it sees "nasdaq" only ([CLS] nas ##da ##q [SEP])
    (cut,) = build_examples(student_tok, words, None, LABEL2ID, 16, teacher_tokenizer=teacher_tok,
                            teacher_max_length=5)
    assert cut["t_word_index"] == [-1, 0, 0, 0, -1] and cut["word_labels"] == [-100, -100, -100]
    batch = DistillCollator(student_tok, teacher_tok)([example, cut])
    assert words_present(batch["t_word_index"], 3).tolist() == [[True, True, True], [True, False, False]]
    assert batch["word_labels"].shape == (2, 3) and batch["t_input_ids"].shape == (2, 8)


def test_cached_and_on_the_fly_teacher_give_the_same_losses():
    teacher_tok = wordpiece_tokenizer(["nas", "##da", "##q", "lend", "##er", "said", "acme", "rose", "in", "dallas"])
    student_tok = wordpiece_tokenizer(["nasdaq", "lender", "sa", "##id", "ac", "##me", "rose", "in", "dallas"])
    teacher = bert_classifier(layers=2, vocab=len(teacher_tok))
    student = bert_classifier(layers=1, vocab=len(student_tok), seed=1)
    words = [["Nasdaq", "lender", "said"], ["Acme", "rose", "in", "Dallas"]]
    tags = [["B-ORG", "O", "O"], ["B-ORG", "O", "O", "B-LOC"]]
    settings = LossSettings(hidden_weight=1.0, word_pooling="mean", layer_map=map_layers(1, 2))
    targets = word_outputs(teacher, teacher_tok, words, pooling="mean", hidden_layers=[2])
    cached = build_examples(student_tok, words, tags, LABEL2ID, 32, targets=targets)
    live = build_examples(student_tok, words, tags, LABEL2ID, 32, teacher_tokenizer=teacher_tok)
    collate = DistillCollator(student_tok, teacher_tok)
    from_cache = distillation_losses(student, collate(cached), settings)
    from_teacher = distillation_losses(student, collate(live), settings, teacher)
    assert set(from_cache) == {"kd", "ce", "hidden"}
    for name in from_cache:
        assert from_cache[name].item() == pytest.approx(from_teacher[name].item(), rel=1e-3), name


def test_a_student_equal_to_its_teacher_has_zero_distillation_loss(tiny_classifier):
    teacher, tokenizer = tiny_classifier
    student, student_tok, layers = build_student(teacher, tokenizer)  # all layers, same tokenizer
    assert layers == [0, 1]
    student.eval()
    for model in (student, teacher):
        model.set_attn_implementation("eager")
    words = [["Acme", "Holdings", "hired", "Dana", "Whitfield", "in", "Dallas", "."]]
    examples = build_examples(student_tok, words, None, LABEL2ID, 32, teacher_tokenizer=tokenizer)
    settings = LossSettings(ce_weight=0, hidden_weight=1, attention_weight=1, layer_map=map_layers(2, 2))
    parts = distillation_losses(student, DistillCollator(student_tok, tokenizer)(examples), settings, teacher)
    assert set(parts) == {"kd", "hidden", "attention"}
    assert all(value.item() == pytest.approx(0.0, abs=1e-5) for value in parts.values()), parts


def test_attention_kd_trains_a_student_without_attention_dropout(tiny_classifier, tmp_path):
    teacher, tokenizer = tiny_classifier
    student, student_tok, _ = build_student(teacher, tokenizer)  # all layers: the teacher's copy
    for model in (student, teacher):
        model.set_attn_implementation("eager")
    for name, module in student.named_modules():  # only the attention probabilities' dropout stays on
        if isinstance(module, torch.nn.Dropout) and ".attention.self." not in f".{name}":
            module.p = 0.0
    student.train()
    words = [["Acme", "Holdings", "hired", "Dana", "Whitfield", "in", "Dallas", "."]]
    batch = DistillCollator(student_tok, tokenizer)(
        build_examples(student_tok, words, None, LABEL2ID, 32, teacher_tokenizer=tokenizer))
    settings = LossSettings(kd_weight=0, ce_weight=0, attention_weight=1, layer_map=map_layers(2, 2))
    torch.manual_seed(0)
    # the eager maps come after dropout: a dropped key has probability 0 where the teacher's has mass
    assert distillation_losses(student, batch, settings, teacher)["attention"].item() > 1.0
    assert without_attention_dropout(student) == 2 and student.config.attention_probs_dropout_prob == 0
    assert distillation_losses(student, batch, settings, teacher)["attention"].item() == pytest.approx(0, abs=1e-5)
    # distillation with the attention loss turns it off in the student it trains; the live teacher (a copy:
    # it is put in eval mode) is left trainable, so a student cut from it afterwards can learn
    data = load_ner_data("sample")
    fresh, fresh_tok, _ = build_student(teacher, tokenizer, n_layers=1)
    assert fresh.config.attention_probs_dropout_prob > 0
    live = copy.deepcopy(teacher)
    before = [p.detach().clone() for p in live.parameters()]
    distill_student(fresh, fresh_tok, live, tokenizer, data.splits["train"][:8],
                    data.splits["validation"][:4], LABELS, TrainSettings(epochs=1, batch_size=8, max_length=32),
                    LossSettings(attention_weight=1, layer_map=map_layers(1, 2)), tmp_path, cache_teacher=False,
                    progress=False)
    assert fresh.config.attention_probs_dropout_prob == 0
    assert all(m.p == 0 for n, m in fresh.named_modules() if isinstance(m, torch.nn.Dropout) and "attention.self" in n)
    assert all(p.requires_grad for p in live.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, live.parameters(), strict=True))  # and unchanged
    assert all(p.grad is None for p in live.parameters())


def test_attention_loss_refuses_different_tokenizers():
    teacher_tok = wordpiece_tokenizer(["nas", "##da", "##q", "said"])
    student_tok = wordpiece_tokenizer(["nasdaq", "said"])
    teacher = bert_classifier(layers=2, vocab=len(teacher_tok))
    student = bert_classifier(layers=1, vocab=len(student_tok))
    for model in (student, teacher):
        model.set_attn_implementation("eager")
    examples = build_examples(student_tok, [["Nasdaq", "said"]], None, LABEL2ID, 16, teacher_tokenizer=teacher_tok)
    settings = LossSettings(attention_weight=1, layer_map=map_layers(1, 2))
    with pytest.raises(ValueProblem, match="attention_weight: .*same sub-tokens"):
        distillation_losses(student, DistillCollator(student_tok, teacher_tok)(examples), settings, teacher)


def test_a_student_with_another_tokenizer_learns_from_the_teacher(tiny_classifier, tmp_path):
    """A 1-layer student with a freshly trained 300-piece WordPiece: its loss falls over a few epochs."""
    import copy

    from findistill.vocab.build import train_new_tokenizer

    teacher, tokenizer = tiny_classifier
    teacher = copy.deepcopy(teacher)
    with torch.no_grad():  # a random head scaled up: confident, varied predictions worth imitating
        teacher.classifier.weight.mul_(30.0)
    data = load_ner_data("sample")
    train, validation = data.splits["train"][:48], data.splits["validation"][:16]
    domain = train_new_tokenizer(tokenizer, (" ".join(s.tokens) for s in train), 300).tokenizer
    student, student_tok, _ = build_student(teacher, tokenizer, n_layers=1, tokenizer=domain)
    assert len(student_tok) <= 300
    epochs: list[dict] = []
    summary = distill_student(
        student, student_tok, teacher, tokenizer, train, validation, LABELS,
        TrainSettings(epochs=4, batch_size=8, learning_rate=3e-3, patience=4, max_length=64),
        LossSettings(ce_weight=0.0, hidden_weight=1.0, layer_map=map_layers(1, 2)), tmp_path / "ckpt",
        transfer=swap_mentions(train, 16, 0), on_epoch=lambda metrics, epoch: epochs.append(metrics), progress=False,
    )
    assert summary["epochs_run"] == 4 and summary["train_examples"] >= 64 and summary["transfer_sentences"] == 16
    assert {"train_loss_kd", "train_loss_hidden", "val_f1"} <= set(epochs[0]) and "train_loss_ce" not in epochs[0]
    assert epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"]
    assert epochs[-1]["train_loss_kd"] < 0.8 * epochs[0]["train_loss_kd"]
    assert not hasattr(student, "findistill_projections")  # nothing extra is saved with the student


def test_an_interrupted_distillation_resumes_from_its_last_checkpoint(tiny_classifier, tmp_path):
    teacher, tokenizer = tiny_classifier
    data = load_ner_data("sample")
    train, validation = data.splits["train"][:24], data.splits["validation"][:8]
    output = tmp_path / "ckpt"

    def run(epochs: int) -> dict:
        student, student_tok, _ = build_student(teacher, tokenizer, n_layers=1)
        return distill_student(student, student_tok, teacher, tokenizer, train, validation, LABELS,
                               TrainSettings(epochs=epochs, batch_size=8, patience=5, max_length=64),
                               LossSettings(), output, progress=False)

    first = run(1)
    assert first["resumed_from"] is None and first["epochs_run"] == 1
    second = run(2)  # as if the 2-epoch run had been killed after its first epoch
    assert second["resumed_from"] is not None and second["resumed_from"].endswith("checkpoint-3")
    assert second["epochs_run"] == 2


def test_a_narrower_student_learns_hidden_states_through_a_projection(tiny_classifier, tmp_path):
    teacher, tokenizer = tiny_classifier  # 32 wide
    student = bert_classifier(layers=1, width=16, vocab=len(tokenizer), seed=2).train()
    data = load_ner_data("sample")
    epochs: list[dict] = []
    distill_student(student, tokenizer, teacher, tokenizer, data.splits["train"][:24], data.splits["validation"][:8],
                    LABELS, TrainSettings(epochs=3, batch_size=8, learning_rate=3e-3, patience=5, max_length=64),
                    LossSettings(kd_weight=0.0, ce_weight=0.0, hidden_weight=1.0, layer_map=map_layers(1, 2)),
                    tmp_path / "ckpt", on_epoch=lambda metrics, epoch: epochs.append(metrics), progress=False)
    assert epochs[-1]["train_loss_hidden"] < epochs[0]["train_loss_hidden"]
    assert not hasattr(student, "findistill_projections")
    assert student.config.hidden_size == 16


def test_ensemble_targets_are_the_mean_of_the_members_word_logits(tmp_path, packaged_tokenizer):
    from findistill.training.distill import teacher_targets

    vocab = packaged_tokenizer.vocab_size
    members = [bert_classifier(layers=2, width=32, vocab=vocab, seed=seed) for seed in (0, 1, 2)]
    settings = TrainSettings(max_length=32)
    losses = LossSettings(hidden_weight=1.0, layer_map=map_layers(1, 2))
    alone = [word_outputs(m, packaged_tokenizer, SENTENCES, max_length=32, hidden_layers=[2]) for m in members]
    ensemble = teacher_targets([(m, packaged_tokenizer) for m in members], SENTENCES, settings, losses, tmp_path)
    for i in range(len(SENTENCES)):
        expected = (alone[0].logits[i] + alone[1].logits[i] + alone[2].logits[i]) / 3
        assert np.allclose(ensemble.logits[i], expected, atol=1e-6)
        assert not np.allclose(ensemble.logits[i], alone[0].logits[i])  # the members really differ
        assert np.array_equal(ensemble.hidden[i], alone[0].hidden[i])  # hidden targets: the first member's
    assert len(list(tmp_path.glob("teacher-outputs-*"))) == 3  # one cache per member
    single = teacher_targets([(members[1], packaged_tokenizer)], SENTENCES, settings, losses, tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(single.logits, alone[1].logits, strict=True))
    # another environment (another CPU's kernels, or pinned ones) computes its own; the same one reads them
    cached = set(tmp_path.glob("teacher-outputs-*"))
    pinned = "AMD EPYC, AVX2, mkl 2024.2, ATEN_CPU_CAPABILITY=avx2"
    teacher_targets([(members[1], packaged_tokenizer)], SENTENCES, settings, losses, tmp_path, environment=pinned)
    assert len(set(tmp_path.glob("teacher-outputs-*")) - cached) == 1
    cached = set(tmp_path.glob("teacher-outputs-*"))
    again = teacher_targets([(members[1], packaged_tokenizer)], SENTENCES, settings, losses, tmp_path,
                            environment=pinned)
    assert set(tmp_path.glob("teacher-outputs-*")) == cached
    assert all(np.array_equal(a, b) for a, b in zip(again.logits, single.logits, strict=True))
