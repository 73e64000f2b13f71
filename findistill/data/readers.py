"""Readers of labelled files: CoNLL columns, JSONL, Hugging Face datasets (local or Hub), and UTF-8 text lines.

Every reader returns :class:`~findistill.data.corpus.Sentence` lists with the tags as written;
errors name the file and the line.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from findistill.data.corpus import DataError, Sentence
from findistill.data.files import SPLITS_HELP, canonical_split, list_data_files, split_for_file_name
from findistill.data.tags import EXPECTED_TAGS, TAG_RE

_COLUMN_SEP = re.compile(r"[ \t\f\v]+")
_ASCII_SPACE = " \t\r\n\f\v"
_DOCSTART = "-DOCSTART-"
_HF_FILE_SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}
_OFFLINE_WAYS = (
    "a local folder of CoNLL/JSONL files (e.g. train.conll, validation.conll, test.conll), "
    "a folder written by datasets' save_to_disk, or local parquet/json files"
)


class Located(NamedTuple):
    """The sentences of one source, where each starts and which document each belongs to.

    ``lines[i]``: the line sentence ``i`` starts on (None for dataset rows). ``documents[i]``:
    the number of ``-DOCSTART-`` lines before sentence ``i`` (0 before the first one), or
    ``documents`` is None when the source marks no document boundaries.
    """

    sentences: list[Sentence]
    lines: list[int | None]
    documents: list[int] | None = None


def _check_file(path: Path, expected: str) -> None:
    """Raises DataError if ``path`` is not an existing file; ``expected`` describes what should be there."""
    if not path.exists():
        raise DataError(f"no such file; expected {expected}", path)
    if not path.is_file():
        raise DataError(f"is not a file; expected {expected}", path)


def utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yields (line number from 1, line without its ``\\n``) of a UTF-8 file, streamed; ``.gz`` files are
    decompressed and a leading BOM is dropped.

    Raises DataError naming the line and byte offset of the first byte that is not UTF-8.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    offset = 0
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"byte 0x{raw[err.start]:02x} at byte offset {offset + err.start} is not valid UTF-8; "
                                "the file must be UTF-8 encoded (re-encode it, e.g. with iconv -t UTF-8)",
                                path, number) from None
            offset += len(raw)
            yield number, line.removesuffix("\n")


def json_lines(path: Path, expected: str) -> Iterator[tuple[int, Any]]:
    """Yields (line number, decoded value) of each non-blank line of a JSON Lines file (``.gz`` too).

    Raises DataError naming the line of the first line that is not JSON; ``expected`` says what
    each line should hold.
    """
    for number, line in utf8_lines(path):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg}); expected {expected}", path, number) from None


def _read_conll_located(path: str | os.PathLike) -> Located:
    """Returns the sentences of a column file, the line each starts on and its document.

    Documents are numbered by the ``-DOCSTART-`` lines before them; a file without any has
    ``documents`` None.
    """
    path = Path(path)
    _check_file(path, "a CoNLL file (one 'token ... tag' per line, blank lines between sentences) "
                      "or a folder of data files")
    sentences: list[Sentence] = []
    starts: list[int | None] = []
    documents: list[int] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = document = 0

    def flush() -> None:
        if tokens:
            sentences.append(Sentence(tokens.copy(), tags.copy()))
            starts.append(start)
            documents.append(document)
            tokens.clear()
            tags.clear()

    for number, line in utf8_lines(path):
        columns = [column for column in _COLUMN_SEP.split(line.strip(_ASCII_SPACE)) if column]
        if not columns or columns[0] == _DOCSTART:
            flush()
            if columns:  # a -DOCSTART- line: the sentences after it belong to the next document
                document += 1
            continue
        if len(columns) < 2:
            raise DataError(f"expected 'token ... tag' (at least two whitespace-separated columns, "
                            f"the tag last), got {line.strip(_ASCII_SPACE)!r}", path, number)
        tag = columns[-1]
        if TAG_RE.match(tag) is None:
            raise DataError(f"invalid tag {tag!r}; expected {EXPECTED_TAGS}", path, number)
        if not tokens:
            start = number
        tokens.append(columns[0])
        tags.append(tag)
    flush()
    if not sentences:
        raise DataError("contains no sentences; expected a CoNLL file with one 'token ... tag' per line "
                        "and blank lines between sentences", path)
    return Located(sentences, starts, documents if document else None)


def read_conll(path: str | os.PathLike) -> list[Sentence]:
    """Returns the sentences of a CoNLL-style column file, tags exactly as in the file.

    Token is the first column, tag the last; blank lines and ``-DOCSTART-`` lines end a
    sentence. Raises DataError (with file and line) for a missing or empty file, a line
    without tag, an invalid tag, or bytes that are not UTF-8.
    """
    return _read_conll_located(path)[0]


def _read_jsonl_located(path: str | os.PathLike) -> Located:
    """Returns the sentences of a JSONL file and the line number of each record."""
    path = Path(path)
    _check_file(path, 'a JSONL file with one {"tokens": [...], "tags": [...]} object per line')
    sentences: list[Sentence] = []
    lines: list[int | None] = []
    for number, record in json_lines(path, "one JSON object per line"):
        sentences.append(_record_to_sentence(record, path, number))
        lines.append(number)
    if not sentences:
        raise DataError('contains no sentences; expected one {"tokens": [...], "tags": [...]} object per line', path)
    return Located(sentences, lines)


def _record_to_sentence(record: Any, path: Path, number: int) -> Sentence:
    """Returns the Sentence of one JSONL record; DataError (file, line) if it is malformed."""
    expected = 'expected an object with "tokens" and "tags" (lists of strings of equal length)'
    if not isinstance(record, dict):
        raise DataError(f"got a JSON {type(record).__name__}; {expected}", path, number)
    tags_key = "tags" if "tags" in record else "ner_tags"
    if "tokens" not in record or tags_key not in record:
        raise DataError(f"found keys {sorted(record)}; {expected}", path, number)
    tokens, tags = record["tokens"], record[tags_key]
    if not _is_str_list(tokens):
        raise DataError(f'"tokens" is not a list of strings; {expected}', path, number)
    if not _is_str_list(tags):
        integers = isinstance(tags, list) and bool(tags) and all(isinstance(t, int) for t in tags)
        hint = (" (integer ner_tags need label names: use a save_to_disk/parquet dataset with a ClassLabel "
                "feature, or string tags)") if integers else ""
        raise DataError(f'"{tags_key}" is not a list of strings{hint}; {expected}', path, number)
    if len(tokens) != len(tags):
        raise DataError(f"{len(tokens)} tokens but {len(tags)} tags; {expected}", path, number)
    if not tokens:
        raise DataError(f"empty sentence; {expected}", path, number)
    for tag in tags:
        if TAG_RE.match(tag) is None:
            raise DataError(f"invalid tag {tag!r}; expected {EXPECTED_TAGS}", path, number)
    return Sentence(list(tokens), list(tags))


def _is_str_list(value: Any) -> bool:
    """Returns True if ``value`` is a list whose items are all strings."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def read_jsonl(path: str | os.PathLike) -> list[Sentence]:
    """Returns the sentences of a JSONL file: one object per line with ``tokens`` and ``tags``.

    ``ner_tags`` is accepted instead of ``tags`` when it holds strings. Raises DataError
    (file, line) for malformed records, unequal lengths or invalid tags.
    """
    return _read_jsonl_located(path)[0]


def _is_json_lines(path: Path) -> bool:
    """Returns True if the first non-blank line of ``path`` is a complete JSON object."""
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                try:
                    return isinstance(json.loads(raw), dict)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return False
    return False


def read_file_located(path: str | os.PathLike) -> Located:
    """Returns the sentences of a data file (dispatch by extension), their start lines and documents."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or (suffix == ".json" and path.is_file() and _is_json_lines(path)):
        return _read_jsonl_located(path)
    if suffix in (".json", ".parquet"):
        _check_file(path, f"a {suffix[1:]} file of records with 'tokens' and 'ner_tags' (or 'tags')")
        parts = read_hf_dataset(os.fspath(path))
        sentences = [sentence for part in parts.values() for sentence in part]
        return Located(sentences, [None] * len(sentences))
    return _read_conll_located(path)


def read_file(path: str | os.PathLike) -> list[Sentence]:
    """Returns the sentences of one data file, tags as in the file.

    ``.jsonl`` (and ``.json`` with one object per line) -> :func:`read_jsonl`; other ``.json``
    and ``.parquet`` -> Hugging Face records via ``datasets``; anything else -> :func:`read_conll`.
    """
    return read_file_located(path)[0]


def is_saved_dataset(folder: Path) -> bool:
    """Returns True if ``folder`` was written by ``save_to_disk`` (Dataset or DatasetDict)."""
    return folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file())


def read_hf_dataset(source: str) -> dict[str, list[Sentence]]:
    """Returns ``{split: sentences}`` read with the ``datasets`` library, tags as strings.

    ``source`` is a ``save_to_disk`` folder, a local ``.parquet``/``.json``/``.jsonl`` file or a
    folder of such files, or else a dataset hub id. Split names ``dev``/``valid``/``val`` become
    ``validation``; a single unsplit dataset or file whose name names no split is ``"all"``.
    Columns: ``tokens`` plus ``ner_tags`` (ClassLabel integers or strings) or ``tags``.
    """
    import datasets  # imported here: slow to import and only needed for these formats

    path = Path(source)
    if is_saved_dataset(path):
        loaded = datasets.load_from_disk(os.fspath(path))
    elif path.is_file() or path.is_dir():
        loaded = _load_local_files(datasets, path)
    else:
        loaded = _load_from_hub(datasets, source)
    if isinstance(loaded, datasets.Dataset):
        loaded = {"all": loaded}
    result: dict[str, list[Sentence]] = {}
    for name, dataset in loaded.items():
        split = "all" if name == "all" else canonical_split(name)
        if split is None:
            raise DataError(f"split {name!r} is not one of train, validation (dev, valid, val), test; "
                            f"found splits: {', '.join(loaded)}", source)
        result.setdefault(split, []).extend(_dataset_to_sentences(dataset, source, name))
    return result


def _load_local_files(datasets: Any, path: Path) -> Any:
    """Returns a DatasetDict for a local parquet/json(l) file or a folder of them."""
    files = [path] if path.is_file() else list_data_files(path)
    builders = {_HF_FILE_SUFFIXES.get(file.suffix.lower()) for file in files}
    if not files or None in builders or len(builders) != 1:
        raise DataError("expected a parquet or json/jsonl file, or a folder holding only files of one of "
                        f"these kinds; found: {', '.join(f.name for f in files) or 'no data files'}", path)
    data_files: dict[str, list[str]] = {}
    for file in files:
        split = split_for_file_name(file) or "all"
        data_files.setdefault(split, []).append(os.fspath(file))
    if "all" in data_files and len(data_files) > 1:
        raise DataError(f"cannot tell the split of {data_files['all'][0]}; {SPLITS_HELP}", path)
    # "all" is reserved by datasets as a split name, so load unsplit files as "train" and rename.
    renamed = {("train" if split == "all" else split): files for split, files in data_files.items()}
    loaded = datasets.load_dataset(builders.pop(), data_files=renamed)
    return {"all": loaded["train"]} if "all" in data_files else dict(loaded)


def _load_from_hub(datasets: Any, source: str) -> Any:
    """Returns the DatasetDict of hub id ``source``; DataError naming the offline ways if it fails."""
    try:
        return datasets.load_dataset(source)
    except Exception as err:  # datasets raises many types here (connection, offline, not found)
        if _looks_unreachable(err):
            reason = "the dataset hub is unreachable on this machine"
        else:
            reason = f"loading it from the dataset hub failed ({type(err).__name__}: {err})"
        raise DataError(f"not a local file or folder, and {reason}. Offline ways to give data: {_OFFLINE_WAYS}",
                        source) from err


_UNREACHABLE_NAMES = ("connect", "offline", "timeout")
_UNREACHABLE_TEXTS = ("offline", "couldn't reach", "connection", "resolve host")


def _looks_unreachable(err: BaseException) -> bool:
    """Returns True if ``err`` (or its causes) says the hub could not be reached or is offline."""
    if os.environ.get("HF_DATASETS_OFFLINE", "0").upper() in ("1", "ON", "YES", "TRUE") or \
            os.environ.get("HF_HUB_OFFLINE", "0").upper() in ("1", "ON", "YES", "TRUE"):
        return True
    seen: BaseException | None = err
    while seen is not None:
        name, text = type(seen).__name__.lower(), str(seen).lower()
        if isinstance(seen, (ConnectionError, TimeoutError)) or any(word in name for word in _UNREACHABLE_NAMES) \
                or any(word in text for word in _UNREACHABLE_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tag_names(feature: Any) -> list[str] | None:
    """Returns the ClassLabel names of a ``Sequence``/``List`` of ClassLabel feature, else None."""
    inner = feature[0] if isinstance(feature, list) and feature else getattr(feature, "feature", None)
    names = getattr(inner, "names", None)
    return list(names) if names else None


def _dataset_to_sentences(dataset: Any, source: str, split: str) -> list[Sentence]:
    """Returns the sentences of one ``datasets.Dataset``; DataError if columns or tags are wrong."""
    columns = list(dataset.column_names)
    tags_column = next((c for c in ("ner_tags", "tags") if c in columns), None)
    if "tokens" not in columns or tags_column is None:
        raise DataError(f"split {split!r}: expected columns 'tokens' and 'ner_tags' (or 'tags'); "
                        f"found: {', '.join(columns)}", source)
    names = _tag_names(dataset.features[tags_column])
    sentences = []
    for row, (tokens, tags) in enumerate(zip(dataset["tokens"], dataset[tags_column])):
        where = f"split {split!r}, row {row}"
        if names is not None:
            if any(not 0 <= t < len(names) for t in tags):
                raise DataError(f"{where}: tag ids {tags} outside the {len(names)} label names {names}", source)
            tags = [names[t] for t in tags]
        elif not _is_str_list(tags):
            raise DataError(f"{where}: column {tags_column!r} holds {type(tags[0]).__name__ if tags else 'nothing'} "
                            "values without label names; expected strings or a Sequence(ClassLabel) feature", source)
        if len(tokens) != len(tags):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags", source)
        for tag in tags:
            if TAG_RE.match(tag) is None:
                raise DataError(f"{where}: invalid tag {tag!r}; expected {EXPECTED_TAGS}", source)
        if tokens:
            sentences.append(Sentence(list(tokens), list(tags)))
    return sentences
