"""Fixtures of the cost tests: a tiny random BERT token classifier and its toy WordPiece tokenizer."""

from __future__ import annotations

import pytest
import torch
from tiny_bert import PIECES, SPECIAL, WORDS, tiny_config
from transformers import BertForTokenClassification, BertTokenizerFast


@pytest.fixture(scope="module")
def model() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(tiny_config())


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> BertTokenizerFast:
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + WORDS + PIECES) + "\n")
    tok = BertTokenizerFast.from_pretrained(str(folder))
    assert tok.tokenize("incomes") == ["income", "##s"]  # the fixture tokenises as the tests assume
    return tok
