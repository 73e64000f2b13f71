"""Factorised word embeddings (ALBERT's parameterisation) initialised from a truncated SVD.

A ``V x H`` word-embedding matrix ``E`` becomes ``A`` (``V x r``) followed by ``B`` (``r x H``):
``V*H`` parameters become ``r*(V+H)``. Initialised from the SVD ``E = U S W^T`` with ``A = U_r S_r``
and ``B = W_r^T``, the product ``AB`` is the best rank-``r`` approximation of ``E`` (Eckart-Young):
``||E - AB||_F = sqrt(sum_{i>r} s_i^2)``, and each row moves by at most ``s_{r+1}``; at full rank it
is exact. The student keeps the teacher's whole vocabulary, hence its segmentation and its coverage of
rare entity names, at a fraction of the embedding parameters. Weighting the rows by how often each
token occurs in the domain text spends the rank on the tokens the model will actually read. With
``exact_rows`` K > 0 the K most frequent rows are also kept exactly: a table of K rows (and a zero
row) adds to their low-rank rows the difference to the original, and the SVD's subspace is chosen on
the other rows alone, so the rank serves the rare tokens (``(K+1)*H`` more parameters; the adaptive
input embeddings of Baevski and Auli in two bands).

A factorised model is saved as usual (``save_pretrained``, safetensors) with the rank in its config
(:data:`RANK_KEY`); :func:`findistill.models.loading.load_token_classifier` rebuilds the module and
loads both factors. Plain ``transformers`` loading does not know the module: use findistill's loader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from transformers import PreTrainedModel

from findistill.config import ValueProblem

#: how the rows of the embedding matrix are weighted when it is factorised (``frequency``: by token counts)
EMBEDDING_WEIGHTS = ("uniform", "frequency")
#: config attribute holding the rank of a factorised word embedding (absent or 0: a plain matrix)
RANK_KEY = "findistill_embedding_rank"
#: config attribute holding how many rows of a factorised embedding are kept exact (absent or 0: none)
EXACT_ROWS_KEY = "findistill_embedding_exact_rows"


class FactorisedEmbedding(nn.Module):
    """Word embeddings ``project(embed(ids))``: a ``num_embeddings x rank`` table, then a ``rank x
    embedding_dim`` linear map without bias. With ``exact_rows`` K > 0, ``exact(slot[ids])`` is added: a
    ``(K + 1) x embedding_dim`` table whose last row is a fixed zero, and ``slot`` (a buffer saved with the
    weights) maps the K chosen token ids to their rows and every other id to the zero row."""

    def __init__(self, num_embeddings: int, rank: int, embedding_dim: int, padding_idx: int | None = None,
                 exact_rows: int = 0):
        super().__init__()
        self.num_embeddings, self.rank, self.embedding_dim = num_embeddings, rank, embedding_dim
        self.padding_idx, self.exact_rows = padding_idx, exact_rows
        self.embed = nn.Embedding(num_embeddings, rank, padding_idx=padding_idx)
        self.project = nn.Linear(rank, embedding_dim, bias=False)
        if exact_rows:
            self.exact = nn.Embedding(exact_rows + 1, embedding_dim, padding_idx=exact_rows)
            self.register_buffer("slot", torch.full((num_embeddings,), exact_rows, dtype=torch.long))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        low_rank = self.project(self.embed(input_ids))
        return low_rank + self.exact(self.slot[input_ids]) if self.exact_rows else low_rank

    @property
    def weight(self) -> torch.Tensor:
        """The full ``num_embeddings x embedding_dim`` matrix the factors stand for (computed on each read)."""
        low_rank = self.project(self.embed.weight)
        return low_rank + self.exact.weight[self.slot] if self.exact_rows else low_rank

    def exact_ids(self) -> torch.Tensor:
        """The token ids whose rows are kept exact, ascending (empty without ``exact_rows``)."""
        if not self.exact_rows:
            return torch.empty(0, dtype=torch.long)
        return torch.nonzero(self.slot < self.exact_rows).flatten()

    def extra_repr(self) -> str:
        exact = f", exact_rows={self.exact_rows}" if self.exact_rows else ""
        return f"{self.num_embeddings}, rank={self.rank}, {self.embedding_dim}{exact}"


def svd_factors(matrix: torch.Tensor, rank: int,
                row_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A, B, singular values)`` with ``A @ B`` the best rank-``rank`` approximation of ``matrix``.

    Without ``row_weights``, in the Frobenius norm: ``A = U_r S_r``, ``B = W_r^T``. With row weights
    ``w`` (>= 0), in ``sum_v w_v ||E_v - A_v B||^2``: ``B`` is the top-``rank`` right singular vectors of
    ``diag(sqrt(w)) E`` and every row is projected onto them, ``A = E B^T`` (for a given ``B`` with
    orthonormal rows the projection is each row's optimum whatever its weight, so the weights choose
    only the subspace). The singular values are those of the (weighted) matrix. Computed in float64,
    returned in the matrix's dtype."""
    exact = matrix.detach().double()
    weighted = exact if row_weights is None else exact * row_weights.double().clamp_min(0).sqrt()[:, None]
    u, s, wt = torch.linalg.svd(weighted, full_matrices=False)
    b = wt[:rank]
    a = u[:, :rank] * s[:rank] if row_weights is None else exact @ b.T
    return a.to(matrix.dtype), b.to(matrix.dtype), s


def truncation_error(singular_values: torch.Tensor, rank: int) -> float:
    """``||E - A B||_F / ||E||_F`` of the rank-``rank`` truncation, from the singular values alone (with row
    weights: the same ratio in the weighted norm)."""
    total = float(singular_values.pow(2).sum())
    return (float(singular_values[rank:].pow(2).sum()) / total) ** 0.5 if total > 0 else 0.0


def token_frequencies(tokenizer, texts: Iterable[Sequence[str] | str], size: int) -> torch.Tensor:
    """How often each of ``size`` token ids occurs when ``tokenizer`` (a fast one) splits ``texts`` into
    pieces, special tokens left out. ``texts``: sentences as lists of words, or raw strings (lines of a
    corpus, split by the tokenizer's own pre-tokeniser); read 1,000 at a time, so a corpus can stream."""
    counts = torch.zeros(size, dtype=torch.float64)
    texts = iter(texts)
    while batch := list(islice(texts, 1000)):
        words = not isinstance(batch[0], str)
        # the tokenizer's own call: no padding or truncation, whatever its tokenizer.json enables
        encoded = tokenizer([list(t) for t in batch] if words else batch, is_split_into_words=words,
                            add_special_tokens=False, padding=False, truncation=False)["input_ids"]
        ids = torch.tensor([i for row in encoded for i in row], dtype=torch.long)
        counts += torch.bincount(ids, minlength=size)[:size].double()
    return counts


def factorised_parameters(vocab: int, width: int, rank: int, exact_rows: int = 0) -> int:
    """Parameters of a :class:`FactorisedEmbedding`: ``r*(V+H)``, plus ``(K+1)*H`` with ``exact_rows`` K > 0."""
    return rank * (vocab + width) + ((exact_rows + 1) * width if exact_rows else 0)


def exact_rows_at_equal_parameters(vocab: int, width: int, rank: int, exact_rows: int) -> int:
    """The rank that, with ``exact_rows`` exact rows, uses no more embedding parameters than ``rank`` alone
    (``r*(V+H) + (K+1)*H <= rank*(V+H)``, the exact table's zero row included); 0 when the exact rows alone
    exceed them."""
    return max(0, (rank * (vocab + width) - (exact_rows + 1) * width) // (vocab + width))


def factorise_embeddings(model: PreTrainedModel, rank: int, row_weights: torch.Tensor | None = None,
                         exact_rows: int = 0) -> dict[str, float]:
    """Replace ``model``'s input word embeddings by a rank-``rank`` :class:`FactorisedEmbedding` from
    their truncated SVD (in place; the rank is recorded in the config), optionally weighting the rows
    (:func:`svd_factors`; e.g. by :func:`token_frequencies`). With ``exact_rows`` K > 0 (which needs the
    weights) the K rows of largest weight are kept exact and the subspace is chosen on the others.
    Returns the rank, the relative Frobenius error of the embeddings (``embedding_svd_error``), with
    weights also the relative error of the factors in the weighted norm (``embedding_weighted_error``,
    over the rows the factors alone stand for), and the embedding parameters before and after.

    Embeddings already factorised (a trained factorised student) are factorised further at a lower
    rank: the new factors come from the SVD of the matrix the current ones stand for."""
    current = model.get_input_embeddings()
    if isinstance(current, FactorisedEmbedding) and rank >= current.rank:
        raise ValueProblem("embedding_rank", f"the model's embeddings are already factorised at rank {current.rank}; "
                           f"expected a lower rank to factorise them further, got {rank}")
    vocab, width = current.weight.shape
    if not 1 <= rank <= min(vocab, width):
        raise ValueProblem("embedding_rank", f"expected 0 (no factorisation) or a rank in 1..{min(vocab, width)} "
                           f"(the embedding matrix is {vocab} x {width}), got {rank}")
    if row_weights is not None and (row_weights.shape != (vocab,) or float(row_weights.sum()) <= 0):
        raise ValueProblem("embedding_weights", f"expected one weight >= 0 per embedding row ({vocab}), not all "
                           f"zero; got shape {tuple(row_weights.shape)}")
    if exact_rows and (row_weights is None or not 0 < exact_rows < int((row_weights > 0).sum())):
        raise ValueProblem("embedding_exact_rows", "expected 0, or fewer rows than the tokens counted, with "
                           f"embedding_weights=frequency to choose them by; got {exact_rows}")
    weights = row_weights
    if exact_rows:
        chosen = torch.sort(torch.argsort(row_weights, descending=True, stable=True)[:exact_rows]).values
        weights = row_weights.clone()
        weights[chosen] = 0
    before = sum(p.numel() for p in current.parameters())
    matrix = current.weight.detach()  # of a factorised embedding: the matrix its factors stand for
    a, b, singular = svd_factors(matrix, rank, weights)
    factorised = FactorisedEmbedding(vocab, rank, width, getattr(current, "padding_idx", None), exact_rows)
    with torch.no_grad():
        factorised.embed.weight.copy_(a)
        factorised.project.weight.copy_(b.T)
        if exact_rows:
            factorised.slot[chosen] = torch.arange(exact_rows)
            factorised.exact.weight[:exact_rows] = matrix[chosen] - a[chosen] @ b
        error = float((matrix.double() - factorised.weight.double()).norm() / matrix.double().norm())
    model.set_input_embeddings(factorised.to(matrix.device))
    setattr(model.config, RANK_KEY, rank)
    if exact_rows:
        setattr(model.config, EXACT_ROWS_KEY, exact_rows)
    elif hasattr(model.config, EXACT_ROWS_KEY):  # factorised further without the exact rows it had
        delattr(model.config, EXACT_ROWS_KEY)
    result = {"embedding_rank": rank, "embedding_svd_error": error, "embedding_params_before": before,
              "embedding_params_after": factorised_parameters(vocab, width, rank, exact_rows)}
    if row_weights is not None:
        result["embedding_weighted_error"] = truncation_error(singular, rank)
    return result


def _tensor_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def restore_factorised(model: PreTrainedModel, folder: str | Path) -> list[str]:
    """For a model loaded from ``folder`` whose config records a factorised embedding: put the
    :class:`FactorisedEmbedding` back and load its factors (and exact rows) from the folder's safetensors
    files. Returns the checkpoint keys it consumed (none for a plain model)."""
    rank = int(getattr(model.config, RANK_KEY, 0) or 0)
    if rank <= 0:
        return []
    current = model.get_input_embeddings()
    vocab, width = current.weight.shape
    module = FactorisedEmbedding(vocab, rank, width, getattr(current, "padding_idx", None),
                                 int(getattr(model.config, EXACT_ROWS_KEY, 0) or 0))
    prefix = next(name for name, m in model.named_modules() if m is current)
    wanted = {f"{prefix}.{name}": tensor for name, tensor in module.state_dict(keep_vars=True).items()}
    found: set[str] = set()
    for path in _tensor_files(Path(folder)):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                # a base model saved alone has no task prefix (``bert.``): match on the suffix
                target = next((name for name in wanted if name == key or name.endswith("." + key)), None)
                if target is not None:
                    with torch.no_grad():
                        wanted[target].copy_(handle.get_tensor(key))
                    found.add(target)
    missing = sorted(set(wanted) - found)
    if missing:
        raise ValueError(f"{folder}: the config says the word embeddings are factorised (rank {rank}) but the "
                         f"weights lack {', '.join(missing)}")
    model.set_input_embeddings(module.to(current.weight.device, current.weight.dtype))
    return sorted(found)
