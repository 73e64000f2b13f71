"""Factorised (SVD) word embeddings: exact at full rank, within the Eckart-Young bound below it, and
saved and loaded by findistill's loader."""

import pytest
import torch
from conftest import LABELS
from tiny_bert import bert_classifier

from findistill.config import ValueProblem
from findistill.costs.size import count_parameters
from findistill.models.factorised import (
    EXACT_ROWS_KEY,
    RANK_KEY,
    FactorisedEmbedding,
    factorise_embeddings,
    svd_factors,
)
from findistill.models.loading import load_token_classifier


def _ids(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (3, 9), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def test_full_rank_reproduces_the_teacher_embeddings_and_outputs():
    model = bert_classifier(layers=2, width=32, vocab=64)
    original = model.get_input_embeddings().weight.detach().clone()
    inputs = _ids(64)
    with torch.no_grad():
        before = model(**inputs).logits
    report = factorise_embeddings(model, 32)  # rank = width: nothing is truncated
    module = model.get_input_embeddings()
    assert isinstance(module, FactorisedEmbedding) and report["embedding_svd_error"] < 1e-6
    assert torch.allclose(module.weight, original, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, before, atol=1e-4)


@pytest.mark.parametrize("rank", [1, 4, 16])
def test_truncated_factors_stay_within_the_svd_error_bound(rank):
    torch.manual_seed(3)
    matrix = torch.randn(50, 20)
    a, b, singular = svd_factors(matrix, rank)
    assert a.shape == (50, rank) and b.shape == (rank, 20)
    residual = matrix - a @ b
    tail = singular[rank:]
    # Eckart-Young: the Frobenius error is exactly the norm of the dropped singular values ...
    assert float(torch.linalg.norm(residual)) == pytest.approx(float(tail.pow(2).sum().sqrt()), rel=1e-4)
    # ... and no row moves by more than the first dropped singular value
    assert float(residual.norm(dim=1).max()) <= float(singular[rank]) * (1 + 1e-5)
    # any other rank-r matrix does worse: a random perturbation of the factors raises the error
    worse = matrix - (a + 0.01 * torch.randn_like(a)) @ b
    assert torch.linalg.norm(worse) > torch.linalg.norm(residual)


def test_a_factorised_student_saves_and_loads_with_fewer_parameters(tmp_path):
    model = bert_classifier(layers=2, width=32, vocab=400)
    plain = count_parameters(model)["params_total"]
    report = factorise_embeddings(model, 4)
    assert report["embedding_params_after"] == 4 * (400 + 32) < report["embedding_params_before"] == 400 * 32
    assert count_parameters(model)["params_total"] == plain - 400 * 32 + 4 * (400 + 32)
    inputs = _ids(400)
    with torch.no_grad():
        expected = model(**inputs).logits
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = load_token_classifier(str(tmp_path))
    assert getattr(loaded.config, RANK_KEY) == 4 and isinstance(loaded.get_input_embeddings(), FactorisedEmbedding)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, expected)
    relabelled = load_token_classifier(str(tmp_path), LABELS[:3])  # a new head keeps the factorised embeddings
    assert torch.equal(relabelled.get_input_embeddings().embed.weight, loaded.get_input_embeddings().embed.weight)


def test_a_rank_beyond_the_matrix_or_not_below_the_current_one_is_refused():
    model = bert_classifier(layers=1, width=32, vocab=64)
    with pytest.raises(ValueProblem, match="embedding_rank.*1..32"):
        factorise_embeddings(model, 33)
    factorise_embeddings(model, 8)
    for rank in (8, 12):
        with pytest.raises(ValueProblem, match="already factorised at rank 8.*lower rank.*got " + str(rank)):
            factorise_embeddings(model, rank)


def test_factorised_embeddings_are_factorised_further_from_the_matrix_they_stand_for(tmp_path):
    model = bert_classifier(layers=1, width=32, vocab=300)
    factorise_embeddings(model, 8)
    with torch.no_grad():  # a trained student's factors: no longer the SVD's own
        model.get_input_embeddings().embed.weight.mul_(torch.linspace(0.5, 2.0, 8))
    current = model.get_input_embeddings().weight.detach().clone()
    report = factorise_embeddings(model, 3, torch.ones(300))
    assert report["embedding_params_before"] == 8 * (300 + 32) and report["embedding_params_after"] == 3 * (300 + 32)
    module = model.get_input_embeddings()
    assert module.rank == 3 and getattr(model.config, RANK_KEY) == 3
    # the best rank-3 approximation of the rank-8 matrix: its error is that of the singular values dropped
    singular = torch.linalg.svdvals(current.double())
    assert torch.linalg.norm(current - module.weight.detach()) == pytest.approx(
        float(singular[3:].pow(2).sum().sqrt()), rel=1e-4)
    assert report["embedding_svd_error"] == pytest.approx(float(singular[3:].norm() / singular.norm()), rel=1e-4)
    model.save_pretrained(tmp_path, safe_serialization=True)
    inputs = _ids(300)
    with torch.no_grad():
        assert torch.equal(load_token_classifier(str(tmp_path))(**inputs).logits, model(**inputs).logits)

    # exact rows kept before and not asked for again: the new factors stand for them too, and the config says so
    counts = torch.arange(300, dtype=torch.float)
    factorise_embeddings(model, 2, counts, exact_rows=10)
    factorise_embeddings(model, 1)
    assert not hasattr(model.config, EXACT_ROWS_KEY) and model.get_input_embeddings().exact_rows == 0
    model.save_pretrained(tmp_path / "again", safe_serialization=True)
    with torch.no_grad():
        assert torch.equal(load_token_classifier(str(tmp_path / "again"))(**inputs).logits, model(**inputs).logits)


def test_frequency_weights_spend_the_rank_on_the_frequent_rows():
    torch.manual_seed(5)
    matrix = torch.randn(60, 20)
    weights = torch.zeros(60)
    weights[[3, 17, 42]] = torch.tensor([50.0, 9.0, 1.0])  # three tokens occur, the rest never
    a, b, _ = svd_factors(matrix, 3, weights)
    # three weighted rows fit a rank-3 subspace exactly; the plain SVD, spread over all 60, does not
    assert torch.allclose((a @ b)[[3, 17, 42]], matrix[[3, 17, 42]], atol=1e-5)
    plain_a, plain_b, _ = svd_factors(matrix, 3)
    assert (plain_a @ plain_b - matrix)[[3, 17, 42]].norm() > 1
    # every row, weighted or not, is its projection onto the kept subspace: the best it can get there
    assert torch.allclose(a, matrix @ b.T, atol=1e-5) and torch.allclose(b @ b.T, torch.eye(3), atol=1e-5)

    # with all rows weighted, the weighted optimum beats the plain SVD in the weighted norm and is no better
    # in the plain one (each is optimal in its own norm)
    counts = torch.rand(60) ** 4 * 100

    def weighted_error(x, y):
        return float(((matrix - x @ y).pow(2).sum(dim=1) * counts).sum())

    wa, wb, _ = svd_factors(matrix, 5, counts)
    pa, pb, _ = svd_factors(matrix, 5)
    assert weighted_error(wa, wb) < weighted_error(pa, pb)
    assert torch.linalg.norm(matrix - wa @ wb) >= torch.linalg.norm(matrix - pa @ pb)
    # equal weights are the plain factorisation
    ea, eb, _ = svd_factors(matrix, 5, torch.full((60,), 7.0))
    assert torch.allclose(ea @ eb, pa @ pb, atol=1e-5)


def test_token_frequencies_count_pieces_without_special_tokens():
    from conftest import wordpiece_tokenizer

    from findistill.models.factorised import token_frequencies

    tokenizer = wordpiece_tokenizer(["bank", "net", "profit", "##s", "rose"])  # ids 5..9 after 5 specials
    counts = token_frequencies(tokenizer, [["banks", "rose"], ["net", "profits", "rose"], ["bank"]], 12)
    assert counts.tolist() == [0, 0, 0, 0, 0, 2, 1, 1, 2, 2, 0, 0]
    # raw lines streamed from a generator across several batches of 1,000: the pre-tokeniser splits them
    def lines():
        return (("Banks rose." if i % 2 else "net profits") for i in range(2501))

    counts = token_frequencies(tokenizer, lines(), 12)
    assert counts[5:10].tolist() == [1250, 1251, 1251, 2501, 1250]  # bank, net, profit, ##s, rose
    assert counts.sum() > counts[5:10].sum()  # the full stop is a piece of its own ([UNK] here)
    # a tokenizer.json that pads and truncates (sentence-transformers ship such files) counts the same
    tokenizer.backend_tokenizer.enable_padding(length=16, pad_id=0, pad_token="[PAD]")
    tokenizer.backend_tokenizer.enable_truncation(max_length=1)
    assert token_frequencies(tokenizer, lines(), 12).tolist() == counts.tolist()


def test_weighted_factorisation_reports_both_errors_and_refuses_bad_weights():
    model = bert_classifier(layers=1, width=32, vocab=64)
    weights = torch.zeros(64)
    weights[:10] = 1.0
    report = factorise_embeddings(model, 10, weights)
    assert report["embedding_weighted_error"] < 1e-6 < report["embedding_svd_error"]  # the 10 counted rows are exact
    with pytest.raises(ValueProblem, match="embedding_weights: expected one weight >= 0 per embedding row \\(64\\)"):
        factorise_embeddings(bert_classifier(layers=1, width=32, vocab=64), 4, torch.ones(63))


def test_exact_rows_keep_the_most_frequent_rows_and_give_the_rank_to_the_others(tmp_path):
    from findistill.models.factorised import EXACT_ROWS_KEY, exact_rows_at_equal_parameters

    model = bert_classifier(layers=2, width=32, vocab=400)
    plain = count_parameters(model)["params_total"]
    original = model.get_input_embeddings().weight.detach().clone()
    torch.manual_seed(2)
    counts = torch.rand(400) ** 3 * 1000
    counts[[7, 70, 300]] = 5000.0  # the three most frequent tokens
    rank = exact_rows_at_equal_parameters(400, 32, 8, 3)
    assert rank == 7 and rank * 432 + 4 * 32 <= 8 * 432 < (rank + 1) * 432 + 4 * 32
    report = factorise_embeddings(model, rank, counts, exact_rows=3)
    module = model.get_input_embeddings()
    assert module.exact_ids().tolist() == [7, 70, 300]
    # the chosen rows are the teacher's; every other row is its projection onto a subspace chosen without them
    assert torch.allclose(module.weight[[7, 70, 300]], original[[7, 70, 300]], atol=1e-5)
    others = torch.ones(400, dtype=torch.bool)
    others[[7, 70, 300]] = False
    tail_weights = counts.clone()
    tail_weights[~others] = 0
    a, b, _ = svd_factors(original, rank, tail_weights)
    assert torch.allclose(module.weight[others], (a @ b)[others], atol=1e-5)
    # the rank spent on the others beats a factorisation that also has to fit the three heavy rows, on them
    both_a, both_b, _ = svd_factors(original, rank, counts)

    def tail_error(x):
        return float(((original - x.detach()).pow(2).sum(dim=1) * counts)[others].sum())

    assert tail_error(module.weight) < tail_error(both_a @ both_b)
    # parameters: the rank's, plus the exact table with its fixed zero row, as reported and counted
    assert report["embedding_params_after"] == rank * 432 + 4 * 32
    assert count_parameters(model)["params_total"] == plain - 400 * 32 + report["embedding_params_after"]

    # a training step moves the exact rows and the factors, never the zero row the other tokens read
    inputs = _ids(400)
    inputs["input_ids"][0, :3] = torch.tensor([7, 70, 300])
    model(**inputs).logits.pow(2).sum().backward()
    assert module.exact.weight.grad[:3].abs().sum() > 0 and module.exact.weight.grad[3].abs().sum() == 0
    with torch.no_grad():
        expected = model(**inputs).logits
    model.save_pretrained(tmp_path, safe_serialization=True)
    loaded = load_token_classifier(str(tmp_path))
    assert getattr(loaded.config, EXACT_ROWS_KEY) == 3 and loaded.get_input_embeddings().exact_ids().tolist() == \
        [7, 70, 300]
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, expected)


def test_exact_rows_need_weights_to_choose_them():
    model = bert_classifier(layers=1, width=32, vocab=64)
    with pytest.raises(ValueProblem, match="embedding_exact_rows.*embedding_weights=frequency"):
        factorise_embeddings(model, 4, exact_rows=5)
    counts = torch.zeros(64)
    counts[:4] = 1.0
    with pytest.raises(ValueProblem, match="fewer rows than the tokens counted"):
        factorise_embeddings(model, 4, counts, exact_rows=4)
