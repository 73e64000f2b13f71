"""Unlabeled text, streamed: text files (``.gz`` too), JSONL, parquet, ``save_to_disk`` datasets, Hub datasets.

:func:`iter_text` yields texts one at a time (a corpus larger than memory works);
:func:`split_words` cuts raw text into words as the training data is cut (punctuation split off,
abbreviations such as ``Inc.`` kept whole), with character offsets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from findistill.data.corpus import DataError, Sentence
from findistill.data.files import is_ignored_file, split_for_file_name
from findistill.data.readers import is_saved_dataset, json_lines, utf8_lines
from findistill.data.splits import load_ner_data


def _jsonl_texts(path: Path, text_field: str) -> Iterator[str]:
    expected = f"one JSON object per line with a {text_field!r} string or a 'tokens' list"
    for number, record in json_lines(path, expected):
        if isinstance(record, dict) and isinstance(record.get(text_field), str):
            yield record[text_field]
        elif isinstance(record, dict) and isinstance(record.get("tokens"), list):
            yield " ".join(str(t) for t in record["tokens"])
        else:
            found = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise DataError(f"no text field {text_field!r} (a string) or 'tokens' list; found {found}. "
                            "Give the field with the `text_field` parameter", path, number)


def _parquet_texts(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    if text_field not in handle.schema_arrow.names:
        raise DataError(f"no column {text_field!r}; columns: {', '.join(handle.schema_arrow.names)}. "
                        "Give the column with the `text_field` parameter", path)
    for batch in handle.iter_batches(columns=[text_field], batch_size=1024):
        yield from (text for text in batch.column(0).to_pylist() if isinstance(text, str))


def _dataset_texts(dataset: Any, source: str, text_field: str) -> Iterator[str]:
    columns = list(dataset.column_names or [])
    if columns and text_field not in columns:
        raise DataError(f"no column {text_field!r}; columns: {', '.join(columns)}. "
                        "Give the column with the `text_field` parameter", source)
    for batch in dataset.iter(batch_size=1024):
        yield from (text for text in batch[text_field] if isinstance(text, str))


def _train_split(loaded: Any, source: str) -> Any:
    if hasattr(loaded, "keys"):  # a DatasetDict: never read its validation/test splits
        if "train" not in loaded:
            raise DataError(f"has splits {', '.join(loaded)} but no 'train' split; domain text is read from "
                            "train only (never from a test split)", source)
        return loaded["train"]
    return loaded


def _file_texts(path: Path, text_field: str) -> Iterator[str]:
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".json")):
        yield from _jsonl_texts(path, text_field)
    elif name.endswith(".parquet"):
        yield from _parquet_texts(path, text_field)
    else:
        yield from (line for _, line in utf8_lines(path))


def _source_texts(source: str, text_field: str) -> Iterator[str]:
    path = Path(source)
    if is_saved_dataset(path):
        import datasets

        yield from _dataset_texts(_train_split(datasets.load_from_disk(os.fspath(path)), source), source, text_field)
    elif path.is_dir():
        files = [f for f in sorted(path.iterdir()) if f.is_file() and not is_ignored_file(f)
                 and split_for_file_name(f) not in ("validation", "test")]
        if not files:
            raise DataError("holds no text files (validation/test files are never read as domain text)", path)
        for file in files:
            yield from _file_texts(file, text_field)
    elif path.is_file():
        yield from _file_texts(path, text_field)
    elif source.startswith((".", "/", "~")) or Path(source).suffix or source.count("/") > 1:
        raise DataError("no such file or folder; expected a text file (one text per line), a JSONL file with a "
                        f"{text_field!r} field, a parquet file, a folder of such files or a save_to_disk folder",
                        path)
    else:  # a Hub dataset id, streamed
        import datasets

        try:
            dataset = datasets.load_dataset(source, split="train", streaming=True)
        except Exception as err:  # datasets raises many types here (connection, offline, not found)
            raise DataError(f"not a local file or folder, and loading it from the dataset hub failed "
                            f"({type(err).__name__}); offline, give a local text/JSONL/parquet file or a "
                            "save_to_disk folder", source) from err
        yield from _dataset_texts(dataset, source, text_field)


def iter_text(source: str | os.PathLike, *, text_field: str = "text", max_lines: int = 0) -> Iterator[str]:
    """Stream the non-blank texts of an unlabeled corpus (one text per line or record).

    ``source``: a UTF-8 text file (``.txt``, anything else, ``.gz`` decompressed), a JSONL file (a
    ``text_field`` string, or a ``tokens`` list joined by spaces), a parquet file (column
    ``text_field``), a folder of such files (README/LICENSE and files named as validation/test
    splits skipped), a ``save_to_disk`` dataset (its ``train`` split) or a Hub dataset id
    (streamed). ``max_lines`` > 0 stops after that many texts. Raises DataError naming the source
    when it does not exist, a record lacks the field, or it holds no text at all.
    """
    source = os.fspath(source)
    count = 0
    for text in _source_texts(source, text_field):
        text = text.strip()
        if not text:
            continue
        yield text
        count += 1
        if max_lines and count >= max_lines:
            return
    if count == 0:
        raise DataError("contains no text (every line or record is empty); expected one text per line", source)


def sentence_texts(sentences: Iterable[Sentence]) -> Iterator[str]:
    """Each labelled sentence as text: its words joined by spaces (the tags are not used)."""
    for sentence in sentences:
        yield " ".join(sentence.tokens)


# Order matters: abbreviations with periods (U.S., N.A., Inc.), numbers with separators,
# possessive 's, words with inner hyphens/apostrophes, then any other single non-space character.
_WORD = re.compile(
    r"(?:[A-Za-z]\.){2,}"  # U.S.  N.A.
    r"|(?:Inc|Corp|Co|Ltd|Mr|Mrs|Ms|Dr|Jr|Sr|No|St)\.(?=\s|$|,)"
    r"|\d+(?:[.,:/-]\d+)*"
    r"|['’][sS]\b"  # possessive 's is its own token, as in CoNLL
    r"|\w+(?:[-&]\w+|['’](?![sS]\b)\w+)*"  # Lindqvist-Berg, O'Neill, AT&T
    r"|\S",
)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of ``text`` with character offsets: ``[(word, start, end), ...]`` (end exclusive)."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def word_sentences(source: str | os.PathLike, *, text_field: str = "text", max_lines: int = 0,
                   seed: int = 42) -> list[list[str]]:
    """The sentences of a corpus as word lists: the train split of an NER corpus (anything
    :func:`~findistill.data.splits.load_ner_data` reads), else the texts of a text corpus
    (:func:`iter_text`, at most ``max_lines``; 0: all) cut into words by :func:`split_words`.
    Raises DataError when neither gives a non-empty sentence."""
    try:
        corpus = load_ner_data(source, seed=seed)
    except DataError:  # not labelled data: read it as raw text
        texts = iter_text(source, text_field=text_field, max_lines=max_lines)
        sentences = [words for words in ([w for w, _, _ in split_words(text)] for text in texts) if words]
        if not sentences:
            raise DataError("holds no text", source) from None
        return sentences
    return [list(s.tokens) for s in corpus.splits["train"]]
