"""Distillation: students by layer selection, word-level losses across tokenizers, the training loop."""

import numpy as np
import pytest
import torch
from conftest import LABELS
from tiny_bert import bert_classifier
from transformers import BertForTokenClassification, DistilBertConfig, DistilBertForTokenClassification

from findistill.config import ValueProblem
from findistill.models.students import (
    build_student,
    keep_layers,
    map_layers,
    narrow_feed_forward,
    select_layers,
    student_parameters,
)
from findistill.models.words import word_outputs

LABEL2ID = {label: i for i, label in enumerate(LABELS)}




def test_select_layers_named_and_explicit():
    assert select_layers(6, 3) == [0, 2, 4]
    assert select_layers(6, 2) == [0, 3]
    assert select_layers(6, 1) == [0]
    assert select_layers(6, 2, "first") == [0, 1]
    assert select_layers(6, 0, "1,3,5") == [1, 3, 5]
    assert select_layers(6, 6) == list(range(6))
    with pytest.raises(ValueProblem,
                       match="student_layers: a student cannot be deeper than its teacher.*"
                             "7 layers asked, the teacher has 6"):
        select_layers(6, 7)
    with pytest.raises(ValueProblem, match="0..5"):
        select_layers(6, 0, "2,6")
    with pytest.raises(ValueProblem, match="increasing"):
        select_layers(6, 0, "3,1")
    with pytest.raises(ValueProblem, match="lists 2 layers but student_layers is 3"):
        select_layers(6, 3, "0,5")
    with pytest.raises(ValueProblem, match="layer_selection"):
        select_layers(6, 2, "every-other")


def test_layer_selection_copies_exactly_the_chosen_teacher_weights(tmp_path):
    teacher = bert_classifier(layers=4)
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


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_narrowed_feed_forward_drops_the_units_that_do_nothing_and_keeps_the_outputs(kind, tmp_path):
    torch.manual_seed(0)
    if kind == "bert":
        model = bert_classifier(layers=2, width=32)  # 64 feed-forward units per layer
        blocks = [(layer.intermediate.dense, layer.output.dense) for layer in model.bert.encoder.layer]
        loader, width_key = BertForTokenClassification, "intermediate_size"
    else:
        model = DistilBertForTokenClassification(DistilBertConfig(
            vocab_size=64, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128,
            num_labels=len(LABELS))).eval()
        blocks = [(layer.ffn.lin1, layer.ffn.lin2) for layer in model.distilbert.transformer.layer]
        loader, width_key = DistilBertForTokenClassification, "hidden_dim"
    rng = np.random.default_rng(1)
    with torch.no_grad():  # 24 units per layer (other ones in each) that cannot move the output: no output weights
        for _, down in blocks:
            down.weight[:, rng.choice(64, size=24, replace=False)] = 0
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 30, 41, 3, 0]])
    before = model(input_ids=ids).logits

    counts = narrow_feed_forward(model, 40)
    assert getattr(model.config, width_key) == 40
    assert counts == {"feed_forward_params_before": 2 * (32 * 64 + 64 + 64 * 32 + 32),
                      "feed_forward_params_after": 2 * (32 * 40 + 40 + 40 * 32 + 32)}
    torch.testing.assert_close(model(input_ids=ids).logits, before, rtol=0, atol=1e-6)
    model.save_pretrained(tmp_path, safe_serialization=True)  # a plain model of the narrower width
    torch.testing.assert_close(loader.from_pretrained(tmp_path).eval()(input_ids=ids).logits, before,
                               rtol=0, atol=1e-6)

    narrower = narrow_feed_forward(model, 16)  # now units that matter go: the outputs move
    assert narrower["feed_forward_params_after"] == 2 * (32 * 16 + 16 + 16 * 32 + 32)
    assert not torch.allclose(model(input_ids=ids).logits, before, atol=1e-3)
    with pytest.raises(ValueProblem, match="intermediate_size: .*width in 1..16.*got 40"):
        narrow_feed_forward(model, 40)


def test_student_with_a_domain_vocabulary_keeps_covered_words_exact(tiny_classifier):
    from findistill.vocab.build import trim_vocabulary

    teacher, tokenizer = tiny_classifier
    words = [["Acme", "lender", "hired", "Dana", "in", "Dallas", "."]]
    counts = __import__("collections").Counter(w.lower() for w in words[0])
    domain = trim_vocabulary(tokenizer, counts, 3000).tokenizer
    student, student_tok, _ = build_student(teacher, tokenizer, tokenizer=domain, vocab_transfer="fvt")
    assert student.get_input_embeddings().weight.shape[0] == len(domain) < len(tokenizer)
    same = word_outputs(student.eval(), student_tok, words).logits[0]
    assert np.allclose(same, word_outputs(teacher, tokenizer, words).logits[0], atol=1e-5)


@pytest.mark.parametrize("layers, selection, domain, width, rank, exact", [
    (0, "uniform", False, 0, 0, 0), (1, "uniform", False, 40, 0, 0), (0, "1", True, 0, 8, 0),
    (1, "first", True, 16, 5, 20), (2, "uniform", False, 64, 32, 0)])
def test_the_student_parameter_count_is_that_of_the_built_student(tiny_classifier, layers, selection, domain,
                                                                  width, rank, exact):
    from findistill.costs.size import count_parameters
    from findistill.models.factorised import factorise_embeddings
    from findistill.vocab.build import trim_vocabulary

    teacher, tokenizer = tiny_classifier
    vocab = None
    if domain:
        counts = __import__("collections").Counter("acme lender hired dana in dallas .".split())
        vocab = trim_vocabulary(tokenizer, counts, 3000).tokenizer
    student, student_tok, _ = build_student(teacher, tokenizer, n_layers=layers, selection=selection,
                                            tokenizer=vocab)
    if width:
        narrow_feed_forward(student, width)
    if rank:
        frequencies = torch.arange(len(student_tok), dtype=torch.float)
        factorise_embeddings(student, rank, frequencies, exact)
    predicted = student_parameters(teacher, n_layers=layers, selection=selection,
                                   vocab_size=len(vocab) if vocab else 0, intermediate_size=width,
                                   embedding_rank=rank, exact_rows=exact)
    assert predicted == count_parameters(student)["params_total"]
    assert (predicted == count_parameters(teacher)["params_total"]) == (not (layers or domain or width or rank))


def test_map_layers():
    assert map_layers(3, 6) == [(1, 2), (2, 4), (3, 6)]
    assert map_layers(1, 6) == [(1, 6)]
    assert map_layers(2, 6, "last") == [(2, 6)]
    assert map_layers(2, 6, "0:0,2:6") == [(0, 0), (2, 6)]
    with pytest.raises(ValueProblem, match="out of range"):
        map_layers(2, 6, "3:6")
    with pytest.raises(ValueProblem, match="hidden_layers"):
        map_layers(2, 6, "top")


def test_kept_layer_map_pairs_each_student_layer_with_the_layer_it_was_copied_from():
    kept = select_layers(6, 3, "uniform")
    assert kept == [0, 2, 4]
    assert map_layers(3, 6, "kept", kept) == [(1, 1), (2, 3), (3, 5)]
    assert map_layers(3, 6, "uniform") == [(1, 2), (2, 4), (3, 6)]  # what the student imitates by default
    with pytest.raises(ValueProblem, match="student_init=teacher"):
        map_layers(3, 6, "kept")
    with pytest.raises(ValueProblem, match="do not fit"):
        map_layers(2, 6, "kept", kept)
