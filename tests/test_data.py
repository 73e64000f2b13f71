"""Tests for findistill.data: readers, schemes, split rules, the shared corpora, errors, stats."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from findistill.data import (
    SPLITS,
    DataError,
    NerData,
    Sentence,
    build_label_list,
    dataset_stats,
    detect_scheme,
    load_ner_data,
    read_conll,
    read_file,
    read_hf_dataset,
    read_jsonl,
    stats_metrics,
    to_iob2,
    write_splits,
)

from conftest import LABELS, shared_corpus

CONLL_LABELS = LABELS
shared = shared_corpus


def write(folder: Path, name: str, text: str | bytes) -> Path:
    """Returns the path of a file written into ``folder`` (bytes as given, text as UTF-8)."""
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


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


# ------------------------------------------------------------------------------------------
# Readers


def test_read_conll_four_columns_docstart_blank_lines_crlf(tmp_path):
    text = ("-DOCSTART- -X- O O\r\n\r\n"
            "Silicon NNP - I-ORG\r\nValley NNP - I-ORG  \r\nlends VBZ - O\r\n\r\n\r\n\r\n"
            "Bank NNP - I-ORG\r\n"
            "-DOCSTART- -X- O O\r\n"
            "Smith NNP - I-PER\t\r\n")
    sentences = read_conll(write(tmp_path, "train.txt", text))
    assert sentences == [
        Sentence(["Silicon", "Valley", "lends"], ["I-ORG", "I-ORG", "O"]),
        Sentence(["Bank"], ["I-ORG"]),  # -DOCSTART- ends the sentence even without a blank line
        Sentence(["Smith"], ["I-PER"]),
    ]


def test_read_conll_two_columns_keeps_tags_and_unicode(tmp_path):
    path = write(tmp_path, "x.conll", "Société B-ORG\nGénérale I-ORG\n’s O\n\nH B-PER\nave O\n")
    assert read_conll(path) == [
        Sentence(["Société", "Générale", "’s"], ["B-ORG", "I-ORG", "O"]),
        Sentence(["H", "ave"], ["B-PER", "O"]),
    ]


def test_read_jsonl_tags_and_string_ner_tags(tmp_path):
    lines = [json.dumps({"tokens": ["Apple", "rose"], "tags": ["B-ORG", "O"]}), "",
             json.dumps({"tokens": ["Tim"], "ner_tags": ["S-PER"], "id": 7})]
    path = write(tmp_path, "train.jsonl", "\n".join(lines) + "\n")
    expected = [Sentence(["Apple", "rose"], ["B-ORG", "O"]), Sentence(["Tim"], ["S-PER"])]
    assert read_jsonl(path) == expected
    assert read_file(path) == expected


def test_read_file_dispatches_json_array_to_datasets(tmp_path):
    records = [{"tokens": ["ACME", "Corp"], "tags": ["B-ORG", "I-ORG"]}, {"tokens": ["ok"], "tags": ["O"]}]
    path = write(tmp_path, "data.json", json.dumps(records, indent=2))
    assert read_file(path) == [Sentence(["ACME", "Corp"], ["B-ORG", "I-ORG"]), Sentence(["ok"], ["O"])]


def _classlabel_dataset(tokens, tags):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features({"tokens": Sequence(Value("string")),
                         "ner_tags": Sequence(ClassLabel(names=["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]))})
    return Dataset.from_dict({"tokens": tokens, "ner_tags": tags}, features=features)


def test_read_hf_save_to_disk_datasetdict_maps_classlabels_and_dev(tmp_path):
    from datasets import DatasetDict

    train = _classlabel_dataset([["John", "Smith", "joined", "Acme"], ["no", "entity"]] * 10,
                                [[1, 2, 0, 3], [0, 0]] * 10)
    dev = _classlabel_dataset([["Acme", "Bank", "Ltd"]], [[3, 4, 4]])
    test = _classlabel_dataset([["Mary"]], [[1]])
    DatasetDict({"train": train, "dev": dev, "test": test}).save_to_disk(tmp_path / "saved")

    splits = read_hf_dataset(str(tmp_path / "saved"))
    assert set(splits) == set(SPLITS)
    assert splits["validation"] == [Sentence(["Acme", "Bank", "Ltd"], ["B-ORG", "I-ORG", "I-ORG"])]
    assert splits["train"][0] == Sentence(["John", "Smith", "joined", "Acme"], ["B-PER", "I-PER", "O", "B-ORG"])

    data = load_ner_data(tmp_path / "saved")
    assert data.scheme == "IOB2"
    assert data.labels == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert [len(data.splits[s]) for s in SPLITS] == [20, 1, 1]


def test_read_hf_missing_columns_lists_columns_found(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"words": [["a"]], "labels": [["O"]]}).save_to_disk(tmp_path / "bad")
    with pytest.raises(DataError) as err:
        read_hf_dataset(str(tmp_path / "bad"))
    assert "bad" in str(err.value) and "found: words, labels" in str(err.value)


def test_read_parquet_file_and_folder(tmp_path):
    _classlabel_dataset([["Acme", "hired", "Bob"]] * 30, [[3, 0, 1]] * 30).to_parquet(tmp_path / "train.parquet")
    _classlabel_dataset([["Bob", "Lee"]], [[1, 2]]).to_parquet(tmp_path / "test.parquet")
    assert read_file(tmp_path / "test.parquet") == [Sentence(["Bob", "Lee"], ["B-PER", "I-PER"])]

    data = load_ner_data(tmp_path)
    assert [len(data.splits[s]) for s in SPLITS] == [27, 3, 1]
    assert data.files["test"].endswith("test.parquet")
    assert data.files["validation"] == f"split from {tmp_path / 'train.parquet'} (seed 42, 10%)"


# ------------------------------------------------------------------------------------------
# Schemes


@pytest.mark.parametrize("tags, scheme", [
    ([["I-PER", "I-PER", "O", "I-ORG"], ["O"]], "IO"),
    ([["I-PER", "I-PER", "B-PER", "O", "I-ORG"]], "IOB1"),
    ([["B-PER", "I-PER", "B-PER", "O", "B-ORG"], ["B-LOC"]], "IOB2"),
    ([["B-PER", "E-PER", "O", "S-ORG"]], "BIOES"),
    ([["O", "O"], []], "IOB2"),  # no entity at all
    ([["B-ORG", "I-ORG", "O", "B-PER"], ["B-LOC", "O"], ["O", "I-ORG"]], "IOB2"),  # one stray I- start is a slip
])
def test_detect_scheme(tags, scheme):
    assert detect_scheme(tags) == scheme


@pytest.mark.parametrize("scheme, tags, expected", [
    ("IO", ["I-PER", "I-PER", "O", "I-ORG"], ["B-PER", "I-PER", "O", "B-ORG"]),
    ("IO", ["I-PER", "I-ORG"], ["B-PER", "B-ORG"]),  # a type change starts a new entity
    ("IO", ["I-PER", "O", "I-PER"], ["B-PER", "O", "B-PER"]),  # two entities
    ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-ORG", "I-LOC"], ["B-PER", "I-PER", "B-PER", "O", "B-ORG", "B-LOC"]),
    ("IOB2", ["B-PER", "I-PER", "B-PER", "O", "B-ORG"], ["B-PER", "I-PER", "B-PER", "O", "B-ORG"]),
    ("BIOES", ["B-ORG", "I-ORG", "E-ORG", "S-PER", "O", "B-LOC", "E-LOC"],
     ["B-ORG", "I-ORG", "I-ORG", "B-PER", "O", "B-LOC", "I-LOC"]),
])
def test_to_iob2(scheme, tags, expected):
    assert to_iob2(tags, scheme) == expected


@pytest.mark.parametrize("scheme, tags, says", [
    ("IOB2", ["O", "I-PER"], "token 2"),
    ("IOB2", ["B-ORG", "I-PER"], "token 2"),
    ("IO", ["B-PER"], "not allowed in the IO scheme"),
    ("BIOES", ["B-PER", "O"], "must end with E-PER"),
    ("BIOES", ["B-PER", "I-PER"], "ends inside a PER entity"),
    ("BIOES", ["O", "E-PER"], "token 2"),
])
def test_to_iob2_rejects_invalid_sequences(scheme, tags, says):
    with pytest.raises(DataError, match=re.escape(says)):
        to_iob2(tags, scheme)


def test_build_label_list_is_sorted_and_stable():
    assert build_label_list(["PER", "ORG", "PER", "LOC"]) == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert build_label_list([]) == ["O"]


# ------------------------------------------------------------------------------------------
# Split rules on small folders


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
    from findistill.data import SAMPLE_DATA

    if not SAMPLE_DATA.is_dir():
        pytest.skip(f"packaged sample data not written yet ({SAMPLE_DATA})")
    data = load_ner_data("sample")
    assert all(data.splits[split] for split in SPLITS)
    assert data.files == {split: str(SAMPLE_DATA / f"{split}.conll") for split in SPLITS}


# ------------------------------------------------------------------------------------------
# The shared corpora


def test_sec_filings():
    folder = shared("sec-filings")
    data = load_ner_data(folder)
    assert data.scheme == "IO"
    assert data.labels == CONLL_LABELS
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 1164
    assert len(data.splits["validation"]) == 116
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
    tenth = int(total * 0.1 + 0.5)
    assert sum(sizes) == total and sizes == [total - 2 * tenth, tenth, tenth]
    assert load_ner_data(folder).splits == data.splits
    assert load_ner_data(folder, seed=1).splits["test"] != data.splits["test"]


# ------------------------------------------------------------------------------------------
# Bad input: one DataError naming the file and (where there is one) the line


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


def test_hub_id_unreachable_names_offline_ways(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    message = _error(load_ner_data, "someorg/fin-ner-does-not-exist")
    assert message.startswith("someorg/fin-ner-does-not-exist: ")
    assert "hub is unreachable" in message
    assert "CoNLL/JSONL" in message and "save_to_disk" in message and "parquet" in message


# ------------------------------------------------------------------------------------------
# Statistics


def test_dataset_stats_and_metrics_on_known_case():
    s1 = Sentence(["Apple", "Inc", "sued", "John"], ["B-ORG", "I-ORG", "O", "B-PER"])
    s2 = Sentence(["Hi"], ["O"])
    s3 = Sentence(["Mary", "Ann", "met", "Bob", "at", "IBM", "."], ["B-PER", "I-PER", "O", "B-PER", "O", "B-ORG", "O"])
    long = Sentence(["x"] * 130, ["O"] * 130)
    data = NerData(splits={"train": [s1, s2, s3], "validation": [s2], "test": [long, s1]},
                   labels=build_label_list(["ORG", "PER"]), scheme="IO", files={"train": "t"}, notes=["n"])
    stats = dataset_stats(data)
    train = stats["train"]
    assert (train["sentences"], train["tokens"], train["entities"]) == (3, 12, 5)
    assert train["entities_by_type"] == {"ORG": 2, "PER": 3}
    assert train["len_mean"] == 4.0 and train["len_p50"] == 4.0 and train["len_max"] == 7
    assert train["len_p95"] == pytest.approx(6.7)
    assert stats["validation"]["entities_by_type"] == {"ORG": 0, "PER": 0}
    assert stats["test"]["share_len_over_128"] == 0.5 and stats["test"]["share_len_over_256"] == 0.0
    assert stats["labels"] == data.labels and stats["scheme"] == "IO" and stats["notes"] == ["n"]
    json.dumps(stats)

    metrics = stats_metrics(stats)
    assert metrics["train_sentences"] == 3.0 and metrics["train_entities_PER"] == 3.0
    assert metrics["test_len_max"] == 130.0 and metrics["test_share_len_over_128"] == 0.5
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in metrics)
    assert all(isinstance(value, float) for value in metrics.values())


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
