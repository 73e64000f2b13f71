"""Tests for findistill.data: readers, schemes, split rules, the shared corpora, errors, stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LABELS, shared_corpus, write

from findistill.data.corpus import SPLITS, DataError, Sentence
from findistill.data.readers import read_conll, read_file_located, read_jsonl
from findistill.data.splits import load_ner_data, write_splits
from findistill.data.tags import to_iob2

CONLL_LABELS = LABELS


shared = shared_corpus




def io_corpus(n: int, types: tuple[str, ...] = ("PER", "ORG")) -> str:
    """Returns a two-column IO corpus of ``n`` sentences cycling through ``types``."""
    blocks = []
    for i in range(n):
        entity_type = types[i % len(types)]
        blocks.append(f"Word{i} I-{entity_type}\nName{i} I-{entity_type}\nsaid O\n. O\n")
    return "\n".join(blocks)


def entity_count(sentences: list[Sentence]) -> int:
    """Returns the number of entities (B- tags) in IOB2 sentences."""
    return sum(tag.startswith("B-") for s in sentences for tag in s.tags)


def documents_corpus(sizes: list[int]) -> str:
    """Returns a two-column IO corpus with one document of ``sizes[d]`` sentences per entry.

    Every token names its document and sentence (``D{d}S{i}``), so a sentence tells its document.
    """
    documents = []
    for d, size in enumerate(sizes):
        sentences = [f"D{d}S{i} I-{('PER', 'ORG')[i % 2]}\nsaid O\n" for i in range(size)]
        documents.append("-DOCSTART- -X- O O\n\n" + "\n".join(sentences))
    return "\n".join(documents)


def document_ids(sentences: list[Sentence]) -> set[str]:
    """Returns the documents (``D{d}``) that the sentences of :func:`documents_corpus` come from."""
    return {s.tokens[0].split("S")[0] for s in sentences}


def documents_of(path: Path) -> list[list[list[str]]]:
    """Returns the sentences (token lists) of each document of a CoNLL file, in file order."""
    located = read_file_located(path)
    assert located.documents is not None
    grouped: dict[int, list[list[str]]] = {}
    for sentence, document in zip(located.sentences, located.documents):
        grouped.setdefault(document, []).append(sentence.tokens)
    return list(grouped.values())


def assert_whole_documents(splits: dict[str, list[Sentence]], documents: list[list[list[str]]]) -> dict[str, int]:
    """Asserts every split is a run of whole documents in file order; returns the documents per split."""
    tokens = {split: [s.tokens for s in sentences] for split, sentences in splits.items()}
    at = dict.fromkeys(tokens, 0)
    taken = dict.fromkeys(tokens, 0)
    for document in documents:
        split = next(name for name in tokens if tokens[name][at[name]:at[name] + len(document)] == document)
        at[split] += len(document)
        taken[split] += 1
    assert at == {split: len(t) for split, t in tokens.items()}
    return taken


def test_folder_with_train_and_validation_uses_validation_as_test(tmp_path):
    write(tmp_path, "train.conll", io_corpus(40))
    write(tmp_path, "dev.conll", io_corpus(5))
    write(tmp_path, "README.md", "not data")
    write(tmp_path, "LICENSE", "not data")
    write(tmp_path, ".hidden", "not data")
    data = load_ner_data(tmp_path)
    assert [len(data.splits[s]) for s in SPLITS] == [36, 4, 5]
    assert data.files["test"] == str(tmp_path / "dev.conll")
    raw_dev = read_conll(tmp_path / "dev.conll")
    assert data.splits["test"] == [Sentence(s.tokens, to_iob2(s.tags, "IO")) for s in raw_dev]
    assert any("dev.conll is used as test" in note for note in data.notes)
    assert data.scheme == "IO" and data.splits["train"][0].tags[:2] == ["B-PER", "I-PER"]


def test_single_file_is_split_three_ways_deterministically(tmp_path):
    write(tmp_path, "corpus.txt", io_corpus(50))
    first, again, other = (load_ner_data(tmp_path, seed=s) for s in (42, 42, 7))
    assert [len(first.splits[s]) for s in SPLITS] == [40, 5, 5]
    assert first.splits == again.splits
    assert first.splits["test"] != other.splits["test"]
    assert first.files["train"] == f"split from {tmp_path / 'corpus.txt'} (seed 42, 80%)"
    # the three parts are disjoint and cover the corpus
    tokens = sorted(s.tokens[0] for split in SPLITS for s in first.splits[split])
    assert tokens == sorted(f"Word{i}" for i in range(50))


def test_validation_cut_from_train_is_whole_documents(tmp_path):
    write(tmp_path, "train.conll", documents_corpus([6, 3, 5, 4, 7, 5]))
    write(tmp_path, "test.conll", io_corpus(4))
    data = load_ner_data(tmp_path, validation_fraction=0.2)
    validation, train = data.splits["validation"], data.splits["train"]
    assert validation and data.validation_unit == "document"
    assert not document_ids(validation) & document_ids(train)
    assert document_ids(validation) | document_ids(train) == {f"D{d}" for d in range(6)}
    assert len(validation) + len(train) == 30 and abs(len(validation) - 6) <= 3
    chosen = len(document_ids(validation))
    assert f"validation: {chosen} whole document{'s' if chosen > 1 else ''} of {tmp_path / 'train.conll'} " \
           f"(seed 42): {len(validation)} of 30 sentences" in data.notes
    assert data.files["validation"] == \
        f"split from {tmp_path / 'train.conll'} (seed 42, whole documents, {len(validation)} sentences)"
    # deterministic per seed, and the seed chooses the documents
    assert load_ner_data(tmp_path, validation_fraction=0.2).splits == data.splits
    chosen_by_seed = {frozenset(document_ids(load_ner_data(tmp_path, seed=seed, validation_fraction=0.2)
                                             .splits["validation"])) for seed in range(10)}
    assert len(chosen_by_seed) > 1


def test_validation_documents_come_near_the_fraction(tmp_path):
    """Documents that take the part closer to its share of sentences are taken, others left."""
    write(tmp_path, "train.conll", documents_corpus([30, 2, 2, 2, 2, 2]))
    write(tmp_path, "test.conll", io_corpus(4))
    for seed in range(5):  # 10% of 40 sentences: two 2-sentence documents, never the 30-sentence one
        data = load_ner_data(tmp_path, seed=seed)
        assert len(data.splits["validation"]) == 4 and len(document_ids(data.splits["validation"])) == 2
    write(tmp_path, "train.conll", documents_corpus([10, 12, 10]))
    data = load_ner_data(tmp_path)  # every document is far above 10%: the smallest is taken
    assert len(data.splits["validation"]) == 10 and len(data.splits["train"]) == 22


def test_single_file_with_documents_is_split_three_ways_by_documents(tmp_path):
    write(tmp_path, "corpus.conll", documents_corpus([4, 5, 3, 6, 4, 5, 3, 4, 6, 5]))
    data = load_ner_data(tmp_path)
    parts = [document_ids(data.splits[split]) for split in SPLITS]
    assert all(parts) and data.validation_unit == "document"
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(data.splits[split]) for split in SPLITS) == 45
    assert any(note.startswith("test: ") and "whole document" in note for note in data.notes)
    assert load_ner_data(tmp_path).splits == data.splits


@pytest.mark.parametrize("text, reason", [
    (io_corpus(40), "no document boundaries"),
    ("-DOCSTART- -X- O O\n\n" + io_corpus(40), "only one document"),
])
def test_train_without_documents_is_split_by_sentences(tmp_path, text, reason):
    write(tmp_path, "train.conll", text)
    write(tmp_path, "test.conll", io_corpus(4))
    data = load_ner_data(tmp_path)
    assert data.validation_unit == "sentence" and [len(data.splits[s]) for s in SPLITS] == [36, 4, 4]
    assert f"validation: sentence-level split ({reason}): 4 of 40 sentences of {tmp_path / 'train.conll'} " \
           "drawn at random (seed 42)" in data.notes
    assert data.files["validation"] == f"split from {tmp_path / 'train.conll'} (seed 42, 10%)"


def _word_numbers(sentences: list[Sentence]) -> list[int]:
    return [int(sentence.tokens[0].removeprefix("Word")) for sentence in sentences]


def test_train_without_documents_is_cut_in_whole_blocks_of_consecutive_sentences(tmp_path):
    write(tmp_path, "train.conll", io_corpus(100))
    write(tmp_path, "test.conll", io_corpus(4))
    data = load_ner_data(tmp_path, split_blocks=10)
    validation, train = _word_numbers(data.splits["validation"]), _word_numbers(data.splits["train"])
    assert data.validation_unit == "block" and len(validation) == 10 and len(train) == 90
    first = validation[0]
    assert first % 10 == 0 and validation == list(range(first, first + 10))  # one whole block, in order
    assert sorted(validation + train) == list(range(100))
    assert f"validation: 1 block of 10 consecutive sentences of {tmp_path / 'train.conll'} (seed 42): 10 of 100 " \
           "sentences" in data.notes
    assert data.files["validation"] == f"split from {tmp_path / 'train.conll'} (seed 42, whole blocks, 10 sentences)"
    # another seed picks another block; without split_blocks the sentences are drawn one by one
    assert _word_numbers(load_ner_data(tmp_path, split_blocks=10, seed=1).splits["validation"]) != validation
    assert load_ner_data(tmp_path).validation_unit == "sentence"


def test_one_source_is_cut_three_ways_in_blocks_and_document_boundaries_win_over_blocks(tmp_path):
    write(tmp_path, "corpus.conll", io_corpus(200))
    data = load_ner_data(tmp_path / "corpus.conll", split_blocks=8)
    parts = {split: set(_word_numbers(data.splits[split])) for split in SPLITS}
    assert data.validation_unit == "block" and sum(map(len, parts.values())) == 200
    blocks = {split: {n // 8 for n in numbers} for split, numbers in parts.items()}
    assert sum(map(len, blocks.values())) == 25  # no block has sentences in two parts
    for split in ("validation", "test"):  # whole blocks adding up to about 10% of the sentences each
        assert len(parts[split]) % 8 == 0 and abs(len(parts[split]) - 20) <= 4, (split, len(parts[split]))
    (tmp_path / "docs").mkdir()
    write(tmp_path / "docs", "train.conll", documents_corpus([10] * 10))
    write(tmp_path / "docs", "test.conll", io_corpus(4))
    assert load_ner_data(tmp_path / "docs", split_blocks=3).validation_unit == "document"


def test_a_negative_block_size_is_refused(tmp_path):
    write(tmp_path, "train.conll", io_corpus(20))
    with pytest.raises(DataError, match="split_blocks.*non-negative integer"):
        load_ner_data(tmp_path, split_blocks=-1)


def test_single_file_with_too_few_documents_for_three_parts_is_split_by_sentences(tmp_path):
    write(tmp_path, "corpus.conll", documents_corpus([20, 20]))
    data = load_ner_data(tmp_path)
    assert data.validation_unit == "sentence" and [len(data.splits[s]) for s in SPLITS] == [32, 4, 4]
    assert any("sentence-level split (only 2 documents, too few for whole-document validation, test and train "
               "parts)" in note for note in data.notes)


def test_given_validation_is_recorded_as_given(tmp_path):
    for split in SPLITS:
        write(tmp_path, f"{split}.conll", io_corpus(5))
    assert load_ner_data(tmp_path).validation_unit == "given"


def test_max_sentences_keeps_first_sentences_but_full_label_set(tmp_path):
    write(tmp_path, "train.conll", io_corpus(40, ("PER", "ORG", "LOC")))
    write(tmp_path, "test.conll", io_corpus(9, ("LOC",)))
    data = load_ner_data(tmp_path, max_sentences=2)
    assert [len(data.splits[s]) for s in SPLITS] == [2, 2, 2]
    assert data.entity_types == ["LOC", "ORG", "PER"]


def test_explicit_splits_parameter(tmp_path):
    write(tmp_path, "a.txt", io_corpus(20))
    write(tmp_path, "b.txt", io_corpus(3))
    data = load_ner_data(tmp_path, splits="train=a.txt, test=b.txt")
    assert [len(data.splits[s]) for s in SPLITS] == [18, 2, 3]
    assert data.files["test"] == str(tmp_path / "b.txt")


def test_write_splits_round_trip(tmp_path):
    (tmp_path / "src").mkdir()
    write(tmp_path / "src", "corpus.conll", io_corpus(30, ("PER", "ORG", "LOC")) + "\nZürich I-LOC\n“quoted” O\n")
    data = load_ner_data(tmp_path / "src")
    write_splits(data, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "labels.json").read_text()) == data.labels
    back = load_ner_data(tmp_path / "out")
    assert back.splits == data.splits
    assert back.labels == data.labels
    assert back.scheme == "IOB2"


def test_sample_data_loads_if_packaged():
    from findistill.data.corpus import SAMPLE_DATA

    if not SAMPLE_DATA.is_dir():
        pytest.skip(f"packaged sample data not written yet ({SAMPLE_DATA})")
    data = load_ner_data("sample")
    assert all(data.splits[split] for split in SPLITS)
    assert data.files == {split: str(SAMPLE_DATA / f"{split}.conll") for split in SPLITS}


def test_sec_filings():
    folder = shared("sec-filings")
    data = load_ner_data(folder)
    assert data.scheme == "IO"
    assert data.labels == CONLL_LABELS
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 1164
    # FIN5 holds 5 documents (276, 89, 272, 395 and 132 sentences): validation is the one whole
    # document closest to 10% of the sentences, never sentences of the documents train keeps
    documents = documents_of(folder / "FIN5.txt")
    assert [len(d) for d in documents] == [276, 89, 272, 395, 132]
    taken = assert_whole_documents({s: data.splits[s] for s in ("train", "validation")}, documents)
    assert taken == {"train": 4, "validation": 1} and len(data.splits["validation"]) in (89, 132)
    assert data.validation_unit == "document"
    assert f"validation: 1 whole document of {folder / 'FIN5.txt'} (seed 42): " \
           f"{len(data.splits['validation'])} of 1164 sentences" in data.notes
    assert len(data.splits["test"]) == 303
    assert entity_count(data.splits["test"]) == 318
    assert sum(len(s.tokens) for s in data.splits["test"]) == 13246
    assert data.files["train"] == str(folder / "FIN5.txt") and data.files["test"] == str(folder / "FIN3.txt")
    assert load_ner_data(folder, splits="train=FIN5.txt,test=FIN3.txt").splits == data.splits
    # FIN3 is UTF-8 with a few non-ASCII characters
    assert any(not token.isascii() for s in read_conll(folder / "FIN3.txt") for token in s.tokens)


def test_finer_ord():
    folder = shared("finer-ord")
    data = load_ner_data(folder)
    assert data.scheme == "IOB2"
    assert data.labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    raw_test = read_conll(folder / "validation.conll")
    assert [s.tokens for s in data.splits["test"]] == [s.tokens for s in raw_test]
    assert len(data.splits["test"]) == 402
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 3262
    # 605 entities begin with B- (the README's count); 4 more begin with I-ORG after O
    # (validation.conll lines 30, 5123, 9180, 9454) and count as entities, as seqeval reads them.
    assert sum(tag.startswith("B-") for s in raw_test for tag in s.tags) == 605
    assert entity_count(data.splits["test"]) == 609
    assert any(note.startswith("22 entities start with I-") for note in data.notes)
    with pytest.raises(DataError, match=r"train\.conll:4271: .*token 1: tag 'I-ORG' after 'sentence start'"):
        load_ner_data(folder, scheme="IOB2")  # given explicitly, IOB2 is strict


def test_wikigold_single_file_split():
    folder = shared("wikigold")
    total = len(read_conll(folder / "wikigold.conll.txt"))
    data = load_ner_data(folder)
    sizes = [len(data.splits[s]) for s in SPLITS]
    assert data.scheme == "IO" and data.labels == CONLL_LABELS
    assert sum(sizes) == total and data.validation_unit == "document"
    # 145 articles: validation and test are whole articles, each about a tenth of the sentences
    taken = assert_whole_documents(data.splits, documents_of(folder / "wikigold.conll.txt"))
    assert sum(taken.values()) == 145 and min(taken.values()) >= 1
    assert all(abs(size - total * 0.1) < 0.02 * total for size in sizes[1:])
    assert load_ner_data(folder).splits == data.splits
    assert load_ner_data(folder, seed=1).splits["test"] != data.splits["test"]


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        call(*args, **kwargs)
    return str(err.value)


def test_missing_file(tmp_path):
    message = _error(read_conll, tmp_path / "nope.conll")
    assert "nope.conll" in message and "no such file" in message and "expected a CoNLL file" in message
    assert "nothere" in _error(load_ner_data, tmp_path / "nothere")


def test_empty_file(tmp_path):
    message = _error(read_conll, write(tmp_path, "train.conll", "\n\n-DOCSTART- -X- O O\n\n"))
    assert message.startswith(f"{tmp_path / 'train.conll'}: ") and "no sentences" in message


def test_line_without_tag(tmp_path):
    message = _error(read_conll, write(tmp_path, "a.conll", "Apple B-ORG\n\nrose\n"))
    assert message.startswith(f"{tmp_path / 'a.conll'}:3: ") and "expected 'token ... tag'" in message


def test_invalid_tag(tmp_path):
    message = _error(read_conll, write(tmp_path, "a.conll", "Apple B-ORG\nInc X-FOO\n"))
    assert message.startswith(f"{tmp_path / 'a.conll'}:2: ") and "'X-FOO'" in message and "B-ORG" in message


def test_non_utf8_bytes(tmp_path):
    message = _error(read_conll, write(tmp_path, "a.conll", b"Apple B-ORG\n\xff\xfe I-ORG\n"))
    assert message.startswith(f"{tmp_path / 'a.conll'}:2: ") and "byte offset 12" in message and "UTF-8" in message


def test_bad_jsonl_record(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n')
    message = _error(read_jsonl, path)
    assert message.startswith(f"{path}:2: ") and "2 tokens but 1 tags" in message


def test_label_set_differs_between_splits(tmp_path):
    write(tmp_path, "train.conll", io_corpus(20, ("PER",)))
    write(tmp_path, "test.conll", "Acme B-ORG\nhires O\n")
    message = _error(load_ner_data, tmp_path)
    assert message.startswith(f"{tmp_path / 'test.conll'}:1: ")
    assert "label set differs between splits" in message and "ORG" in message


def test_unassignable_file_in_folder(tmp_path):
    write(tmp_path, "train.conll", io_corpus(20))
    write(tmp_path, "extra.conll", io_corpus(2))
    message = _error(load_ner_data, tmp_path)
    assert "extra.conll" in message and "`splits`" in message


@pytest.mark.parametrize("splits, says", [
    ("train:a.txt", "expected the form"),
    ("train=a.txt,holdout=b.txt", "unknown split 'holdout'"),
])
def test_bad_splits_parameter(tmp_path, splits, says):
    write(tmp_path, "a.txt", io_corpus(20))
    message = _error(load_ner_data, tmp_path, splits=splits)
    assert "`splits`" in message and says in message


def test_bad_scheme_parameter(tmp_path):
    message = _error(load_ner_data, write(tmp_path, "a.txt", io_corpus(20)), scheme="IOB3")
    assert "`scheme`" in message and "'IOB3'" in message and "IO, IOB1, IOB2, BIOES" in message


def test_too_few_sentences_to_split(tmp_path):
    message = _error(load_ner_data, write(tmp_path, "a.txt", io_corpus(3)))
    assert "a.txt" in message and "too few sentences to split (3)" in message and "at least 5 sentences" in message
    data = load_ner_data(write(tmp_path, "a.txt", io_corpus(5)))
    assert [len(data.splits[s]) for s in SPLITS] == [3, 1, 1]


def test_prepared_slice_keeps_its_label_list(tmp_path):
    """A slice whose train part lacks a rare type still loads: labels.json declares the full list."""
    data = load_ner_data(shared_corpus("sec-filings"), max_sentences=60)
    assert "MISC" in data.entity_types
    assert "MISC" not in {t[2:] for s in data.splits["train"] for t in s.tags if t != "O"}
    write_splits(data, tmp_path)
    again = load_ner_data(tmp_path)
    assert again.labels == data.labels and again.splits == data.splits
    (tmp_path / "labels.json").write_text('["O", "B-PER", "I-PER"]')
    with pytest.raises(DataError, match="labels.json"):
        load_ner_data(tmp_path)
