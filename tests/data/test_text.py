"""Tokenization analysis on hand-built cases with known answers, domain text streaming, and the
three ways of building a domain tokenizer (train / trim / extend), with their errors."""

import gzip

import pytest

from findistill.data.corpus import DataError
from findistill.data.text import iter_text, split_words


def test_text_sources_are_streamed(tmp_path):
    (tmp_path / "a.txt").write_text("First line .\n\n  \nSecond line\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("zipped text\n")
    (tmp_path / "c.jsonl").write_text('{"text": "from json"}\n{"tokens": ["pre", "split"], "tags": ["O", "O"]}\n')
    (tmp_path / "test.txt").write_text("held-out text must not be read\n")
    (tmp_path / "README.md").write_text("not data\n")
    texts = iter_text(tmp_path)
    assert iter(texts) is texts  # a generator, not a list
    assert list(texts) == ["First line .", "Second line", "zipped text", "from json", "pre split"]
    assert list(iter_text(tmp_path / "a.txt", max_lines=1)) == ["First line ."]


def test_parquet_and_saved_dataset_text(tmp_path):
    import datasets

    frame = datasets.Dataset.from_dict({"body": ["one text", "two text"], "id": [1, 2]})
    frame.to_parquet(str(tmp_path / "corpus.parquet"))
    assert list(iter_text(tmp_path / "corpus.parquet", text_field="body")) == ["one text", "two text"]
    datasets.DatasetDict({"train": frame, "test": frame.select([0])}).save_to_disk(str(tmp_path / "saved"))
    assert list(iter_text(tmp_path / "saved", text_field="body")) == ["one text", "two text"]
    with pytest.raises(DataError, match="no column 'text'"):
        list(iter_text(tmp_path / "corpus.parquet"))


def test_bad_text_sources_name_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError) as err:
        list(iter_text(missing))
    assert str(missing) in str(err.value) and "no such file" in str(err.value)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="contains no text") as err:
        list(iter_text(empty))
    assert str(empty) in str(err.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: no text field 'text'"):
        list(iter_text(bad))


def test_split_words_follows_conll_tokenisation_with_offsets():
    text = "Acme Corp. lent $1,250,000 to U.S. Lindqvist-Berg Inc., Mr. Doe's O'Neill firm."
    words = split_words(text)
    assert [w for w, _, _ in words] == [
        "Acme", "Corp.", "lent", "$", "1,250,000", "to", "U.S.", "Lindqvist-Berg", "Inc.", ",", "Mr.", "Doe",
        "'s", "O'Neill", "firm", "."]
    assert all(text[s:e] == w for w, s, e in words)
