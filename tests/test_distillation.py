"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

import math

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForTokenClassification

from findistill.config import ConfigError
from findistill.data import Sentence, load_ner_data
from findistill.distillation import (
    DistillCollator,
    LossSettings,
    attention_loss,
    build_examples,
    distill_student,
    distillation_losses,
    hidden_state_loss,
    kd_loss,
    map_layers,
    select_transfer,
    swap_mentions,
    words_present,
)
from findistill.ner import pool_words, word_outputs
from findistill.students import build_student, keep_layers, select_layers
from findistill.training import TrainSettings

from conftest import LABELS, wordpiece_tokenizer

LABEL2ID = {label: i for i, label in enumerate(LABELS)}


def _bert(layers: int = 4, width: int = 32, vocab: int = 64, seed: int = 0) -> BertForTokenClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * width, max_position_embeddings=128, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id=LABEL2ID)
    return BertForTokenClassification(config).eval()


# ----------------------------------------------------------------------------- losses


def test_kd_loss_equals_the_hand_computed_kl_times_t_squared():
    # word 1: teacher [0, 1, 0], student [1, 0, 0] at T = 2: softmax of [0, .5, 0] vs [.5, 0, 0];
    # KL = p_big * .5 - p_small * .5 with p_big = e^.5 / (2 + e^.5), p_small = 1 / (2 + e^.5); x T^2 = 4.
    # word 2: identical logits (KL 0); word 3: masked out (must not count).
    student = torch.tensor([[[1.0, 0.0, 0.0], [3.0, 1.0, 2.0], [9.0, -9.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 1.0, 0.0], [3.0, 1.0, 2.0], [-9.0, 9.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    e = math.exp(0.5)
    expected_word1 = 4 * 0.5 * (e - 1) / (2 + e)
    assert kd_loss(student, teacher, mask, 2.0).item() == pytest.approx(expected_word1 / 2, rel=1e-6)
    assert kd_loss(student, teacher, mask, 1.0).item() != pytest.approx(expected_word1 / 2, rel=1e-3)
    assert kd_loss(student, teacher, torch.zeros_like(mask), 2.0).item() == 0.0


def test_hidden_state_loss_mse_cosine_and_projection():
    s, t = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert hidden_state_loss(s, t, "mse").item() == pytest.approx((0 + 1 + 0 + 1) / 4)
    assert hidden_state_loss(s, t, "cosine").item() == pytest.approx((1 - 1 / math.sqrt(2) + 0) / 2)
    wide = torch.ones(2, 3)
    with pytest.raises(ValueError, match="hidden sizes differ"):
        hidden_state_loss(s, wide)
    projection = torch.nn.Linear(2, 3)
    torch.nn.init.zeros_(projection.weight)
    torch.nn.init.ones_(projection.bias)  # maps everything onto the teacher's ones
    assert hidden_state_loss(s, wide, "mse", projection).item() == 0.0


def test_attention_loss_ignores_padded_queries():
    teacher = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    student = teacher.clone()
    student[0, :, 2] = torch.tensor([1.0, 0.0, 0.0])  # differs only at a padded query
    assert attention_loss(student, teacher, torch.tensor([[1, 1, 0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert attention_loss(student, teacher, torch.tensor([[1, 1, 1]])).item() > 0.01


# ----------------------------------------------------------------------------- alignment across tokenizers


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
    teacher = _bert(layers=2, vocab=len(teacher_tok))
    student = _bert(layers=1, vocab=len(student_tok), seed=1)
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


def test_attention_loss_refuses_different_tokenizers():
    teacher_tok = wordpiece_tokenizer(["nas", "##da", "##q", "said"])
    student_tok = wordpiece_tokenizer(["nasdaq", "said"])
    teacher, student = _bert(layers=2, vocab=len(teacher_tok)), _bert(layers=1, vocab=len(student_tok))
    for model in (student, teacher):
        model.set_attn_implementation("eager")
    examples = build_examples(student_tok, [["Nasdaq", "said"]], None, LABEL2ID, 16, teacher_tokenizer=teacher_tok)
    settings = LossSettings(attention_weight=1, layer_map=map_layers(1, 2))
    with pytest.raises(ConfigError, match="same sub-tokens"):
        distillation_losses(student, DistillCollator(student_tok, teacher_tok)(examples), settings, teacher)


# ----------------------------------------------------------------------------- students


def test_select_layers_named_and_explicit():
    assert select_layers(6, 3) == [0, 2, 4]
    assert select_layers(6, 2) == [0, 3]
    assert select_layers(6, 1) == [0]
    assert select_layers(6, 2, "first") == [0, 1]
    assert select_layers(6, 0, "1,3,5") == [1, 3, 5]
    assert select_layers(6, 6) == list(range(6))
    with pytest.raises(ConfigError, match="deeper than its teacher.*7 layers asked, the teacher has 6"):
        select_layers(6, 7)
    with pytest.raises(ConfigError, match="0..5"):
        select_layers(6, 0, "2,6")
    with pytest.raises(ConfigError, match="increasing"):
        select_layers(6, 0, "3,1")
    with pytest.raises(ConfigError, match="lists 2 layers but student_layers is 3"):
        select_layers(6, 3, "0,5")
    with pytest.raises(ConfigError, match="layer_selection"):
        select_layers(6, 2, "every-other")


def test_layer_selection_copies_exactly_the_chosen_teacher_weights(tmp_path):
    teacher = _bert(layers=4)
    student = keep_layers(teacher, [1, 3])
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for key, value in s_state.items():
        if key.startswith("bert.encoder.layer."):
            position = int(key.split(".")[3])
            source = key.replace(f"layer.{position}.", f"layer.{[1, 3][position]}.", 1)
        else:
            source = key
        assert torch.equal(value, t_state[source]), key
    assert len(s_state) == len(t_state) - 2 * sum(k.startswith("bert.encoder.layer.0.") for k in t_state)
    student.save_pretrained(tmp_path, safe_serialization=True)
    reloaded = BertForTokenClassification.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[2, 7, 9, 3]])
    assert torch.equal(reloaded(input_ids=ids).logits, student(input_ids=ids).logits)
    assert len(teacher.bert.encoder.layer) == 4  # the teacher is untouched


def test_student_with_a_domain_vocabulary_keeps_covered_words_exact(tiny_classifier):
    from findistill.tokenization import trim_vocabulary

    teacher, tokenizer = tiny_classifier
    words = [["Acme", "lender", "hired", "Dana", "in", "Dallas", "."]]
    counts = __import__("collections").Counter(w.lower() for w in words[0])
    domain = trim_vocabulary(tokenizer, counts, 3000).tokenizer
    student, student_tok, _ = build_student(teacher, tokenizer, tokenizer=domain, vocab_transfer="fvt")
    assert student.get_input_embeddings().weight.shape[0] == len(domain) < len(tokenizer)
    same = word_outputs(student.eval(), student_tok, words).logits[0]
    assert np.allclose(same, word_outputs(teacher, tokenizer, words).logits[0], atol=1e-5)


# ----------------------------------------------------------------------------- transfer set


def test_swap_mentions_replaces_entities_by_same_type_mentions():
    train = [Sentence(["Acme", "Corp", "hired", "Dana"], ["B-ORG", "I-ORG", "O", "B-PER"]),
             Sentence(["Lindqvist", "sued", "Borealis"], ["B-PER", "O", "B-ORG"])]
    out = swap_mentions(train, 30, seed=3)
    assert out == swap_mentions(train, 30, seed=3) and len(out) == 30
    orgs, people = {("Acme", "Corp"), ("Borealis",)}, {("Dana",), ("Lindqvist",)}
    for words in out:
        if "hired" in words:
            i = words.index("hired")
            assert tuple(words[:i]) in orgs and tuple(words[i + 1:]) in people
        else:
            i = words.index("sued")
            assert tuple(words[:i]) in people and tuple(words[i + 1:]) in orgs
    assert len({tuple(w) for w in out}) > 2  # new combinations, not copies
    held_out = [Sentence(["Acme", "Corp", "hired", "Dana"], ["O"] * 4)]
    assert ["Acme", "Corp", "hired", "Dana"] not in select_transfer(out, 100, 0, held_out)


def test_map_layers():
    assert map_layers(3, 6) == [(1, 2), (2, 4), (3, 6)]
    assert map_layers(1, 6) == [(1, 6)]
    assert map_layers(2, 6, "last") == [(2, 6)]
    assert map_layers(2, 6, "0:0,2:6") == [(0, 0), (2, 6)]
    with pytest.raises(ConfigError, match="out of range"):
        map_layers(2, 6, "3:6")
    with pytest.raises(ConfigError, match="hidden_layers"):
        map_layers(2, 6, "top")


# ----------------------------------------------------------------------------- training


def test_a_student_with_another_tokenizer_learns_from_the_teacher(tiny_classifier, tmp_path):
    """A 1-layer student with a freshly trained 300-piece WordPiece: its loss falls over a few epochs."""
    from findistill.tokenization import train_new_tokenizer

    import copy

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
    student = _bert(layers=1, width=16, vocab=len(tokenizer), seed=2).train()
    data = load_ner_data("sample")
    epochs: list[dict] = []
    distill_student(student, tokenizer, teacher, tokenizer, data.splits["train"][:24], data.splits["validation"][:8],
                    LABELS, TrainSettings(epochs=3, batch_size=8, learning_rate=3e-3, patience=5, max_length=64),
                    LossSettings(kd_weight=0.0, ce_weight=0.0, hidden_weight=1.0, layer_map=map_layers(1, 2)),
                    tmp_path / "ckpt", on_epoch=lambda metrics, epoch: epochs.append(metrics), progress=False)
    assert epochs[-1]["train_loss_hidden"] < epochs[0]["train_loss_hidden"]
    assert not hasattr(student, "findistill_projections")
    assert student.config.hidden_size == 16


def test_transfer_set_from_raw_text_or_another_corpus_never_holds_evaluation_sentences(tmp_path):
    from findistill.distill_stage import DistillConfig, load_transfer_set

    data = load_ner_data("sample")
    held_out = " ".join(data.splits["test"][0].tokens)
    text = tmp_path / "domain.txt"
    text.write_text(f"{held_out}\nThe lender, Acme Bank N.A., extended the facility.\n\nFitch rated the notes.\n")
    config = DistillConfig(teacher="x", transfer_data=str(text), transfer_ratio=1.0)
    sentences = load_transfer_set(config, data)
    assert sorted(map(tuple, sentences)) == [
        ("Fitch", "rated", "the", "notes", "."),
        ("The", "lender", ",", "Acme", "Bank", "N.A.", ",", "extended", "the", "facility", "."),
    ]  # the test sentence and the blank line are left out
    config = DistillConfig(teacher="x", transfer_data="sample", transfer_ratio=0.1)
    from_corpus = load_transfer_set(config, data)
    assert len(from_corpus) == round(0.1 * len(data.splits["train"]))
    train_texts = {" ".join(s.tokens) for s in data.splits["train"]}
    assert all(" ".join(words) in train_texts for words in from_corpus)
    assert load_transfer_set(DistillConfig(teacher="x", transfer_data="none"), data) == []
