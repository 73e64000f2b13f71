"""Vocabulary transfer: exact FVT means on a toy vocabulary, special tokens by role, and a trimmed
vocabulary that leaves a model's outputs unchanged (tiny random BERT and the packaged teacher)."""

import copy

import pytest
import torch
from conftest import FINANCE, SPECIALS, wordpiece_tokenizer
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

from findistill.config import ValueProblem
from findistill.models.loading import resolve_model_path
from findistill.models.vocab_transfer import old_pieces_splitter, plan_transfer, transfer_matrix, transfer_model
from findistill.vocab.build import count_words, extend_vocabulary, train_new_tokenizer, trim_vocabulary

OLD = ["fin", "##ance", "##an", "##cial", "bank", "##ing", "##s", "a", "##n", "##c", "##e"]
SENTENCE = "Harbor Point Capital agreed to buy Lindqvist Freight AB for $ 1.2 billion, its CEO said."


def toy_pair():
    """Old and new toy tokenizers; the new one lists its special tokens in another order."""
    old = wordpiece_tokenizer(OLD)
    vocab = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]",
             "finance", "##ancial", "banking", "bank", "##s", "##anc", "anc", "zzz"]
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordPiece(vocab={p: i for i, p in enumerate(vocab)}, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    new = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]")
    return old, new


def test_fvt_gives_exactly_the_means_of_the_old_pieces():
    old, new = toy_pair()
    o, n = old.get_vocab(), new.get_vocab()
    matrix = torch.arange(len(old) * 4, dtype=torch.float32).reshape(len(old), 4)
    plan = plan_transfer(old, new, "fvt")
    rows = transfer_matrix(matrix, plan)

    def mean(*tokens):
        return matrix[[o[t] for t in tokens]].mean(0)

    assert torch.equal(rows[n["finance"]], mean("fin", "##ance"))
    assert torch.equal(rows[n["##ancial"]], mean("##an", "##cial"))  # a continuation piece, split as one
    assert torch.equal(rows[n["##anc"]], mean("##an", "##c"))
    assert torch.equal(rows[n["anc"]], mean("a", "##n", "##c"))  # word-initial: starts with "a", not "##an"
    assert torch.equal(rows[n["banking"]], mean("bank", "##ing"))
    assert torch.equal(rows[n["bank"]], matrix[o["bank"]]) and torch.equal(rows[n["##s"]], matrix[o["##s"]])
    assert torch.equal(rows[n["zzz"]], matrix[o["[UNK]"]])  # the old tokenizer can only say UNK
    for special in SPECIALS:  # mapped by role although the ids differ
        assert torch.equal(rows[n[special]], matrix[o[special]])
    assert n["[CLS]"] != o["[CLS]"]
    assert plan.counts() == {"special": 5, "exact": 2, "fvt": 6, "random": 0}


def test_pvt_copies_exact_matches_and_random_copies_nothing():
    old, new = toy_pair()
    o, n = old.get_vocab(), new.get_vocab()
    matrix = torch.randn(len(old), 8)
    pvt = transfer_matrix(matrix, plan_transfer(old, new, "pvt"), std=0.02, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pvt[n["bank"]], matrix[o["bank"]]) and torch.equal(pvt[n["[CLS]"]], matrix[o["[CLS]"]])
    assert not any(torch.allclose(pvt[n["finance"]], row) for row in matrix)
    assert plan_transfer(old, new, "pvt").counts() == {"special": 5, "exact": 2, "fvt": 0, "random": 6}
    random_plan = plan_transfer(old, new, "random")
    assert random_plan.counts() == {"special": 5, "exact": 0, "fvt": 0, "random": 8}
    first = transfer_matrix(matrix, random_plan, generator=torch.Generator().manual_seed(1))
    again = transfer_matrix(matrix, random_plan, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and not torch.equal(first[n["bank"]], matrix[o["bank"]])
    with pytest.raises(ValueProblem, match="method"):
        plan_transfer(old, new, "magic")


def test_greedy_split_matches_the_teacher_wordpiece(packaged_tokenizer):
    split = old_pieces_splitter(packaged_tokenizer)
    model = packaged_tokenizer.backend_tokenizer.model
    words = list(count_words(packaged_tokenizer, [SENTENCE, "irrevocably indebtedness glaxosmithkline ±€"]))
    for word in words:
        assert split(word, False) == [t.id for t in model.tokenize(word)], word
    assert packaged_tokenizer.convert_ids_to_tokens(split("ing", True)) == ["##ing"]


def _trim_to(teacher, text, size=2100):
    return trim_vocabulary(teacher, count_words(teacher, [text]), size).tokenizer


def _hidden(model, tokenizer, text):
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states


def test_trim_gives_identical_outputs_on_a_tiny_random_bert(packaged_tokenizer, tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(packaged_tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    model = BertForMaskedLM(config).eval()
    with torch.no_grad():
        model.cls.predictions.decoder.bias.normal_()  # a bias worth checking
    trimmed = _trim_to(packaged_tokenizer, SENTENCE)
    before = _hidden(model, packaged_tokenizer, SENTENCE)
    old_bias = model.cls.predictions.decoder.bias.detach().clone()
    moved = transfer_model(copy.deepcopy(model), packaged_tokenizer, trimmed, "fvt").eval()
    after = _hidden(moved, trimmed, SENTENCE)
    assert trimmed(SENTENCE).input_ids != packaged_tokenizer(SENTENCE).input_ids  # other ids, same pieces
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    size = len(trimmed)
    assert moved.config.vocab_size == size and moved.get_input_embeddings().weight.shape == (size, 32)
    assert moved.get_output_embeddings().weight is moved.get_input_embeddings().weight  # still tied
    new_ids = [packaged_tokenizer.convert_tokens_to_ids(t) for t in trimmed.convert_ids_to_tokens(range(size))]
    assert torch.equal(moved.cls.predictions.decoder.bias, old_bias[new_ids])
    assert moved.config.pad_token_id == trimmed.pad_token_id == moved.get_input_embeddings().padding_idx
    moved.save_pretrained(tmp_path)
    trimmed.save_pretrained(tmp_path)
    reloaded, tokenizer = AutoModelForMaskedLM.from_pretrained(tmp_path).eval(), AutoTokenizer.from_pretrained(tmp_path)
    logits = reloaded(**tokenizer(SENTENCE, return_tensors="pt")).logits
    assert logits.shape[-1] == size and torch.isfinite(logits).all()


def test_untied_output_embeddings_are_transferred_too(packaged_tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(packaged_tokenizer), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, tie_word_embeddings=False)
    model = BertForMaskedLM(config)
    old_out = model.get_output_embeddings().weight.detach().clone()
    trimmed = _trim_to(packaged_tokenizer, SENTENCE)
    moved = transfer_model(model, packaged_tokenizer, trimmed, "pvt")
    out, inputs = moved.get_output_embeddings().weight, moved.get_input_embeddings().weight
    assert out is not inputs and out.shape == inputs.shape == (len(trimmed), 16)
    new_ids = [packaged_tokenizer.convert_tokens_to_ids(t) for t in trimmed.convert_ids_to_tokens(range(len(trimmed)))]
    assert torch.equal(out, old_out[new_ids])


def test_fvt_model_for_a_trained_tokenizer_loads_and_runs(tiny_encoder_dir, packaged_tokenizer, tmp_path):
    new = train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 200, min_frequency=1).tokenizer
    model = AutoModel.from_pretrained(tiny_encoder_dir)
    old_rows = model.get_input_embeddings().weight.detach().clone()
    moved = transfer_model(model, packaged_tokenizer, new, "fvt")
    plan = plan_transfer(packaged_tokenizer, new, "fvt")
    assert plan.counts()["random"] == 0 and plan.counts()["fvt"] > 0
    cls = new.convert_tokens_to_ids("[CLS]")
    assert torch.equal(moved.get_input_embeddings().weight[cls], old_rows[packaged_tokenizer.cls_token_id])
    moved.save_pretrained(tmp_path)
    new.save_pretrained(tmp_path)
    states = AutoModel.from_pretrained(tmp_path)(**new("Revenue rose .", return_tensors="pt")).last_hidden_state
    assert states.shape[-1] == 32 and torch.isfinite(states).all()


def test_extended_vocabulary_keeps_teacher_rows_and_averages_new_words(tiny_encoder_dir, packaged_tokenizer):
    counts = count_words(packaged_tokenizer, FINANCE)
    extended = extend_vocabulary(packaged_tokenizer, counts, len(packaged_tokenizer) + 4).tokenizer
    model = AutoModel.from_pretrained(tiny_encoder_dir)
    old = model.get_input_embeddings().weight.detach().clone()
    rows = transfer_model(model, packaged_tokenizer, extended, "fvt").get_input_embeddings().weight
    assert rows.shape == (len(packaged_tokenizer) + 4, 32) and model.config.vocab_size == len(extended)
    assert torch.equal(rows[:len(packaged_tokenizer)], old)
    for new_id in range(len(packaged_tokenizer), len(extended)):
        word = extended.convert_ids_to_tokens(new_id)
        pieces = packaged_tokenizer.convert_tokens_to_ids(packaged_tokenizer.tokenize(word))
        assert len(pieces) >= 2 and torch.allclose(rows[new_id], old[pieces].mean(0), atol=1e-7)


def test_trim_gives_identical_outputs_on_the_packaged_teacher(packaged_tokenizer):
    teacher = AutoModel.from_pretrained(resolve_model_path("packaged:all-MiniLM-L6-v2")).eval()
    trimmed = _trim_to(packaged_tokenizer, SENTENCE)
    before = _hidden(teacher, packaged_tokenizer, SENTENCE)[-1]
    after = _hidden(transfer_model(teacher, packaged_tokenizer, trimmed, "fvt").eval(), trimmed, SENTENCE)[-1]
    assert torch.equal(before, after)
    assert len(trimmed) == 2100  # trim fills up to the size asked
    assert teacher.get_input_embeddings().weight.shape == (len(trimmed), 384)
