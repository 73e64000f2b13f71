"""Domain adaptation: whole-word masking, pseudo-perplexity, masked-LM training and general distillation."""

from __future__ import annotations

import pytest
import torch
from conftest import wordpiece_tokenizer

from findistill.models.students import map_layers
from findistill.training.distill import LossSettings
from findistill.training.mlm import (
    WholeWordMaskCollator,
    _l2r_rows,
    general_distill,
    heldout_mlm_loss,
    mask_once,
    mlm_examples,
    pseudo_perplexity,
    train_mlm,
)
from findistill.training.trainer import TrainSettings

PIECES = ["nas", "##da", "##q", "lend", "##er", "said", "shares", "rose", "u", ".", "s"]


def tiny_mlm(vocab_size: int, layers: int = 2, width: int = 32, seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    return BertForMaskedLM(BertConfig(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=layers,
                                      num_attention_heads=2, intermediate_size=2 * width,
                                      max_position_embeddings=64))


def test_whole_word_masking_masks_every_piece_of_a_chosen_word_together():
    tok = wordpiece_tokenizer(PIECES)
    words = [["Nasdaq", "lender", "said", "U.S."], ["shares", "rose"]]
    examples = mlm_examples(tok, words, max_length=32)
    pieces = tok.convert_ids_to_tokens(examples[0]["input_ids"])
    assert pieces == ["[CLS]", "nas", "##da", "##q", "lend", "##er", "said", "u", ".", "s", ".", "[SEP]"]
    groups = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10]]  # pieces of each word (U.S. is one word of four pieces)
    collator = WholeWordMaskCollator(tok, mlm_probability=0.4, seed=0)
    seen_masked = set()
    for _ in range(40):
        batch = collator([dict(e) for e in examples])
        ids, labels = batch["input_ids"][0], batch["labels"][0]
        masked = (labels != -100).tolist()
        for group in groups:
            flags = {masked[i] for i in group}
            assert len(flags) == 1, f"word pieces {group} masked apart: {masked}"
            if flags == {True}:
                seen_masked.add(tuple(group))
                assert all(ids[i] == tok.mask_token_id for i in group)
                assert [int(labels[i]) for i in group] == [examples[0]["input_ids"][i] for i in group]
        assert not masked[0] and not masked[11]  # special tokens are never masked
        assert batch["input_ids"].shape == batch["labels"].shape == (2, 12)  # the short sentence is padded
        assert (batch["labels"][1, 4:] == -100).all()  # padding is never a target
    assert len(seen_masked) == 4  # every word got masked at some point


def test_l2r_rows_mask_a_piece_with_the_later_pieces_of_its_word():
    rows = _l2r_rows([2, 10, 11, 12, 20, 3], [None, 0, 0, 0, 1, None], mask_id=4)
    assert [(pos, original) for _, pos, original in rows] == [(1, 10), (2, 11), (3, 12), (4, 20)]
    assert rows[0][0] == [2, 4, 4, 4, 20, 3]  # first piece: the whole word hidden
    assert rows[1][0] == [2, 10, 4, 4, 20, 3]  # second: earlier piece visible, later one hidden
    assert rows[2][0] == [2, 10, 11, 4, 20, 3]
    assert rows[3][0] == [2, 10, 11, 12, 4, 3]


def test_pseudo_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    tok = wordpiece_tokenizer(PIECES)
    model = tiny_mlm(len(tok))
    with torch.no_grad():  # zero output weights and bias: every token equally likely
        model.cls.predictions.decoder.weight.zero_()
        model.cls.predictions.bias.zero_()
    scores = pseudo_perplexity(model, tok, [["Nasdaq", "said"], ["shares", "rose"]])
    assert scores["words"] == 4 and scores["tokens"] == 6  # nas ##da ##q / said / shares / rose
    assert abs(scores["pppl_token"] - len(tok)) < 1e-3 * len(tok)
    assert abs(scores["pppl_word"] - len(tok) ** 1.5) < 1e-3 * len(tok) ** 1.5  # 6 pieces over 4 words


def test_masked_lm_training_lowers_pseudo_perplexity_on_held_out_text(tmp_path):
    tok = wordpiece_tokenizer(PIECES)
    model = tiny_mlm(len(tok), seed=1)
    corpus = [["Nasdaq", "lender", "said", "shares", "rose"], ["shares", "rose", "said", "Nasdaq", "lender"]] * 40
    heldout = [["Nasdaq", "lender", "said", "shares", "rose"]]
    before = pseudo_perplexity(model, tok, heldout)["pppl_word"]
    loss_before = heldout_mlm_loss(model, tok, corpus[:20], seed=3)
    epochs = []
    summary = train_mlm(model, tok, corpus, heldout, TrainSettings(epochs=4, batch_size=16, learning_rate=3e-3,
                        warmup_ratio=0.0, max_length=32, seed=0), tmp_path / "ckpt", mlm_probability=0.3,
                        on_epoch=lambda metrics, epoch: epochs.append((epoch, metrics)), progress=False)
    after = pseudo_perplexity(model, tok, heldout)["pppl_word"]
    assert after < 0.5 * before, (before, after)
    assert heldout_mlm_loss(model, tok, corpus[:20], seed=3) < loss_before
    assert [e for e, _ in epochs] == [1, 2, 3, 4] and {"train_loss", "val_loss"} <= set(epochs[-1][1])
    assert summary["epochs_run"] == 4 and summary["train_examples"] == len(corpus)


def test_mask_seeds_give_the_same_masks_again_and_other_masks_for_another_seed():
    tok = wordpiece_tokenizer(PIECES)
    text = [["Nasdaq", "lender", "said", "shares", "rose", "U.S."]] * 8
    examples = mlm_examples(tok, text, max_length=32)

    def collated_masks(seed: int) -> torch.Tensor:
        return WholeWordMaskCollator(tok, mlm_probability=0.4, seed=seed)([dict(e) for e in examples])["labels"]

    def fixed_masks(seed: int) -> list[list[int]]:
        return [e["labels"] for e in mask_once(tok, examples, 0.4, seed)]

    a = collated_masks(5)
    assert (a != -100).any()  # something is masked, so equal masks below mean something
    assert torch.equal(a, collated_masks(5))
    assert not torch.equal(a, collated_masks(6))
    assert fixed_masks(5) == fixed_masks(5) and fixed_masks(5) != fixed_masks(6)
    model = tiny_mlm(len(tok))
    loss = heldout_mlm_loss(model, tok, text, mlm_probability=0.4, seed=5)
    assert heldout_mlm_loss(model, tok, text, mlm_probability=0.4, seed=5) == loss
    assert heldout_mlm_loss(model, tok, text, mlm_probability=0.4, seed=6) != loss


def test_held_out_masks_do_not_depend_on_the_batching():
    tok = wordpiece_tokenizer(PIECES)
    model = tiny_mlm(len(tok))
    text = [["Nasdaq", "lender", "said"], ["shares", "rose", "U.S.", "said"], ["lender", "rose"]] * 5
    whole = heldout_mlm_loss(model, tok, text, batch_size=64, mlm_probability=0.4, seed=2)
    assert heldout_mlm_loss(model, tok, text, batch_size=4, mlm_probability=0.4, seed=2) == pytest.approx(whole)


def test_masked_lm_training_stops_early_and_keeps_its_best_epoch(tmp_path):
    """Training on other words than the held-out text's makes the held-out loss rise after epoch 1."""
    tok = wordpiece_tokenizer(PIECES)
    model = tiny_mlm(len(tok), seed=1)
    corpus = [["Nasdaq", "lender", "said"], ["lender", "said", "Nasdaq"]] * 20
    heldout = [["shares", "rose", "U.S."], ["U.S.", "shares", "rose"]] * 4
    settings = TrainSettings(epochs=6, batch_size=8, learning_rate=3e-3, warmup_ratio=0.0, max_length=32, seed=0,
                             patience=1)
    logged = []
    summary = train_mlm(model, tok, corpus, heldout, settings, tmp_path / "ckpt", mlm_probability=0.3,
                        on_epoch=lambda metrics, epoch: logged.append((epoch, metrics["val_loss"])), progress=False)
    assert [epoch for epoch, _ in logged] == [1, 2] and logged[1][1] > logged[0][1]  # worse once: stop
    assert summary["epochs_run"] == 2 and summary["best_epoch"] == 1
    assert summary["best_val_loss"] == pytest.approx(logged[0][1])
    # the model holds epoch 1's weights: its loss on the same masks is epoch 1's val_loss
    restored = heldout_mlm_loss(model, tok, heldout, max_length=32, mlm_probability=0.3, seed=settings.seed)
    assert restored == pytest.approx(logged[0][1], rel=1e-5)


def test_general_distillation_pulls_student_states_towards_the_teacher_across_tokenizers(tmp_path):
    teacher_tok = wordpiece_tokenizer(PIECES)
    student_tok = wordpiece_tokenizer(["nasdaq", "lender", "said", "shares", "rose", "u", ".", "s"])
    teacher = tiny_mlm(len(teacher_tok), layers=2, width=32, seed=2)
    student = tiny_mlm(len(student_tok), layers=1, width=16, seed=3)
    words = [["Nasdaq", "lender", "said", "shares", "rose"], ["shares", "rose", "U.S.", "lender"]] * 12
    heldout = [["lender", "said", "U.S.", "shares"], ["Nasdaq", "rose"]]
    layer_map = map_layers(1, 2, "uniform")
    losses = LossSettings(kd_weight=0.0, ce_weight=0.0, hidden_weight=1.0, layer_map=layer_map)
    settings = TrainSettings(epochs=6, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0, max_length=32, seed=0)
    logged = []
    summary = general_distill(student, student_tok, teacher, teacher_tok, words, settings, losses, tmp_path / "ckpt",
                              heldout=heldout, on_epoch=lambda metrics, epoch: logged.append(metrics),
                              progress=False)
    train_losses = [m["train_loss_hidden"] for m in logged]
    assert len(logged) == 6 and train_losses[-1] < 0.7 * train_losses[0], train_losses
    val_losses = [m["val_loss"] for m in logged]  # the held-out hidden-state loss of each epoch
    assert summary["best_val_loss"] == pytest.approx(min(val_losses))
    assert summary["best_epoch"] == 1 + val_losses.index(min(val_losses))
    # before: through the untrained projection; after: the best epoch's weights, as logged for that epoch
    assert summary["heldout_hidden_loss_after"] == pytest.approx(min(val_losses), rel=1e-5)
    assert summary["heldout_hidden_loss_after"] < 0.7 * summary["heldout_hidden_loss_before"]
    assert not hasattr(student.base_model, "findistill_projections")  # the projection is dropped afterwards


def test_general_distillation_without_held_out_text_runs_every_epoch(tmp_path):
    tok = wordpiece_tokenizer(PIECES)
    teacher, student = tiny_mlm(len(tok), seed=2), tiny_mlm(len(tok), layers=1, seed=3)
    losses = LossSettings(kd_weight=0.0, ce_weight=0.0, hidden_weight=1.0, layer_map=map_layers(1, 2, "uniform"))
    settings = TrainSettings(epochs=2, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0, max_length=32, seed=0,
                             patience=1)
    summary = general_distill(student, tok, teacher, tok, [["Nasdaq", "lender", "said"]] * 8, settings, losses,
                              tmp_path / "ckpt", progress=False)
    assert summary["epochs_run"] == 2 and "best_epoch" not in summary
    assert "heldout_hidden_loss_after" not in summary


def test_head_warm_up_trains_only_the_lm_head_and_lowers_the_held_out_loss(tmp_path):
    from findistill.training.mlm import warm_up_head

    tok = wordpiece_tokenizer(PIECES)
    model = tiny_mlm(len(tok))
    sentences = [["Nasdaq", "lender", "said"], ["shares", "rose"], ["U.S.", "shares", "rose"]] * 8
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss_before = heldout_mlm_loss(model, tok, sentences, max_length=16, mlm_probability=0.3, seed=0)
    warm_up_head(model, tok, sentences, TrainSettings(batch_size=8, learning_rate=3e-2, max_length=16, epochs=5),
                 tmp_path / "warm", mlm_probability=0.3, progress=False)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith("cls.") for name in changed)  # the encoder did not move
    assert "bert.embeddings.word_embeddings.weight" not in changed  # nor the output layer tied to it
    assert all(p.requires_grad for p in model.parameters())  # trainable again afterwards
    assert heldout_mlm_loss(model, tok, sentences, max_length=16, mlm_probability=0.3, seed=0) < loss_before
