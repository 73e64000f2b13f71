"""Reading, normalising, splitting and describing NER corpora.

Every stage that reads labelled data goes through :func:`load_ner_data`, which accepts

* ``"sample"``: the small corpus packaged with findistill (:data:`SAMPLE_DATA`);
* a file: CoNLL-style columns (token first, tag last), JSONL (``tokens``/``tags``), JSON or
  Parquet records in the Hugging Face layout;
* a folder of such files, assigned to splits by file name (``train``/``dev``/``test``..., plus
  a small table of well-known corpus file names, see :data:`KNOWN_FILE_SPLITS`);
* a Hugging Face ``save_to_disk`` folder, or a dataset hub id (which needs network access; on
  these machines the hub is unreachable and the error names the offline alternatives).

The result is a :class:`NerData`: train/validation/test lists of :class:`Sentence` with IOB2
tags, a stable label list, and a record of every decision taken (which file became which split,
what was split off with which seed, which tagging scheme was converted).

Nothing here imports MLflow: stages log :func:`dataset_stats` / :func:`stats_metrics` and the
files written by :func:`write_splits` themselves.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DataError",
    "ENTITY_SCHEMES",
    "KNOWN_FILE_SPLITS",
    "NerData",
    "SAMPLE_DATA",
    "SPLITS",
    "Sentence",
    "build_label_list",
    "dataset_stats",
    "detect_scheme",
    "load_ner_data",
    "read_conll",
    "read_file",
    "read_hf_dataset",
    "read_jsonl",
    "stats_metrics",
    "to_iob2",
    "write_splits",
]

SPLITS = ("train", "validation", "test")
ENTITY_SCHEMES = ("IO", "IOB1", "IOB2", "BIOES")
SAMPLE_DATA = Path(__file__).parent / "sample_data"

#: Well-known corpus files whose names do not say their split (lower-case name -> split).
#: ``FIN5.txt``/``FIN3.txt``: the SEC filings corpus of Salinas Alvarado et al. (2015);
#: ``eng.testa``/``eng.testb`` (and ``deu.*``): CoNLL-2003, where ``testa`` is the dev set.
KNOWN_FILE_SPLITS: dict[str, str] = {
    "fin5.txt": "train",
    "fin3.txt": "test",
    "eng.testa": "validation",
    "eng.testb": "test",
    "deu.testa": "validation",
    "deu.testb": "test",
}

_TAG_RE = re.compile(r"^(?:O|([BIES])-([A-Za-z][A-Za-z0-9_]*))$")
_EXPECTED_TAGS = ("'O' or B-/I-/E-/S- followed by an entity type, e.g. B-ORG, I-PER "
                  "(type: a letter, then letters, digits or _)")
_COLUMN_SEP = re.compile(r"[ \t\f\v]+")
_ASCII_SPACE = " \t\r\n\f\v"
_DOCSTART = "-DOCSTART-"
_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                  "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
_VALIDATION_NAME_RE = re.compile(r"(?<![a-z])(?:validation|valid|dev|val)(?![a-z])")
_IGNORED_PREFIXES = ("readme", "license", "licence", "copying")
_IGNORED_SUFFIXES = (".md", ".rst", ".html", ".pdf")
_IGNORED_NAMES = ("labels.json",)  # written by write_splits next to the split files
_HF_FILE_SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}
_SPLITS_HELP = ("name the files after their split (train / validation, valid, dev, val / test) or give the "
                "`splits` parameter, e.g. splits=\"train=FIN5.txt,test=FIN3.txt\" (paths relative to the folder)")
_OFFLINE_WAYS = (
    "a local folder of CoNLL/JSONL files (e.g. train.conll, validation.conll, test.conll), "
    "a folder written by datasets' save_to_disk, or local parquet/json files"
)


class DataError(ValueError):
    """A problem with input data or a data parameter, phrased for the user.

    ``str(err)`` is ``"{path}:{line}: {message}"``, ``"{path}: {message}"`` or ``message``,
    depending on what is known; ``.message``, ``.path`` and ``.line`` keep the parts.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        if self.path is None:
            return self.message if self.line is None else f"line {self.line}: {self.message}"
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):
        return (type(self), (self.message, self.path, self.line))


@dataclass
class Sentence:
    """One sentence: ``tokens[i]`` is tagged ``tags[i]`` (both lists have the same length)."""

    tokens: list[str]
    tags: list[str]


@dataclass
class NerData:
    """A corpus ready for training: IOB2 splits, label list and the decisions that made it."""

    splits: dict[str, list[Sentence]]
    labels: list[str]
    scheme: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def entity_types(self) -> list[str]:
        """Returns the entity types of the label list, sorted (e.g. ``["LOC", "ORG", "PER"]``)."""
        return sorted({label[2:] for label in self.labels if label != "O"})


# --------------------------------------------------------------------------------------------
# Tags and schemes


def _parse_tag(tag: str) -> tuple[str, str | None]:
    """Returns ``(prefix, type)`` of a tag: ``("O", None)`` or e.g. ``("B", "ORG")``.

    Raises DataError (without location) for a tag of no known form.
    """
    match = _TAG_RE.match(tag)
    if match is None:
        raise DataError(f"invalid tag {tag!r}; expected {_EXPECTED_TAGS}")
    if match.group(1) is None:
        return "O", None
    return match.group(1), match.group(2)


def detect_scheme(tag_sequences: Iterable[list[str]]) -> str:
    """Returns the tagging scheme of a corpus: one of :data:`ENTITY_SCHEMES`.

    ``BIOES`` if any ``E-``/``S-`` tag occurs; ``IO`` if there are entity tags but no ``B-``;
    ``IOB2`` for an all-``O`` corpus. With ``B-`` tags the evidence is weighed: an entity that
    starts with ``I-X`` (after ``O``, at the sentence start or after another type) cannot occur
    in IOB2, and a ``B-X`` that does not follow an ``X`` token cannot occur in IOB1. ``IOB1`` if
    the first kind outnumbers the second, else ``IOB2``: a few stray ``I-`` starts, as real
    IOB2 corpora have (FiNER-ORD has 22), are annotation slips, not another scheme.
    """
    has_entities = has_b = False
    i_starts = b_starts_fresh = 0
    for tags in tag_sequences:
        previous_type: str | None = None
        for tag in tags:
            prefix, entity_type = _parse_tag(tag)
            if prefix in ("E", "S"):
                return "BIOES"
            has_entities = has_entities or prefix != "O"
            if prefix == "B":
                has_b = True
                b_starts_fresh += entity_type != previous_type
            elif prefix == "I":
                i_starts += entity_type != previous_type
            previous_type = entity_type
    if not has_entities:
        return "IOB2"
    if not has_b:
        return "IO"
    return "IOB1" if i_starts > b_starts_fresh else "IOB2"


def _check_scheme(scheme: str, parameter: str = "scheme") -> str:
    """Returns the canonical spelling of a scheme name; DataError names ``parameter`` if unknown."""
    canonical = scheme.upper() if isinstance(scheme, str) else scheme
    if canonical not in ENTITY_SCHEMES:
        raise DataError(f"invalid value for parameter `{parameter}`: {scheme!r}; "
                        f"expected one of {', '.join(ENTITY_SCHEMES)}")
    return canonical


def to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Returns the tags of one sentence in IOB2, converted from ``scheme``.

    IO: an entity starts where the type changes or an ``I-`` follows ``O``. IOB1: an ``I-X``
    that starts an entity becomes ``B-X``. BIOES: ``S-X`` becomes ``B-X``, ``E-X`` becomes
    ``I-X``. IOB2 is returned unchanged. A tag or sequence the scheme does not allow (``B-`` in
    IO, ``I-X`` after ``O`` in IOB2, an unfinished BIOES entity...) raises DataError naming the
    token position (1-based).
    """
    scheme = _check_scheme(scheme)
    parsed = []
    for position, tag in enumerate(tags, 1):
        try:
            parsed.append(_parse_tag(tag))
        except DataError as err:
            raise DataError(f"token {position}: {err.message}") from None
    converter = {"IO": _from_io, "IOB1": _from_iob1, "IOB2": _from_iob2, "BIOES": _from_bioes}[scheme]
    return converter(parsed)


def _sequence_error(position: int, tag: str, previous: str, why: str) -> DataError:
    """Returns a DataError about the tag at 1-based ``position`` following ``previous``."""
    return DataError(f"token {position}: tag {tag!r} after {previous!r}: {why}")


def _tag(prefix: str, entity_type: str | None) -> str:
    """Returns the tag string for a parsed ``(prefix, type)``."""
    return "O" if entity_type is None else f"{prefix}-{entity_type}"


def _from_io(parsed: list[tuple[str, str | None]]) -> list[str]:
    """Returns IOB2 tags for parsed IO tags (only ``O`` and ``I-`` allowed)."""
    out, previous_type = [], None
    for position, (prefix, entity_type) in enumerate(parsed, 1):
        if prefix not in ("O", "I"):
            raise DataError(f"token {position}: tag {_tag(prefix, entity_type)!r} is not allowed in the IO scheme "
                            "(expected only O and I-TYPE); give the right `scheme` or leave it on auto")
        if entity_type is None:
            out.append("O")
        else:
            out.append(f"I-{entity_type}" if entity_type == previous_type else f"B-{entity_type}")
        previous_type = entity_type
    return out


def _from_iob1(parsed: list[tuple[str, str | None]]) -> list[str]:
    """Returns IOB2 tags for parsed IOB1 tags (``O``, ``I-``, ``B-`` allowed)."""
    out, previous_type = [], None
    for position, (prefix, entity_type) in enumerate(parsed, 1):
        if prefix not in ("O", "I", "B"):
            raise DataError(f"token {position}: tag {_tag(prefix, entity_type)!r} is not allowed in the IOB1 scheme "
                            "(expected O, B-TYPE, I-TYPE); give the right `scheme` or leave it on auto")
        if entity_type is None:
            out.append("O")
        elif prefix == "I" and entity_type == previous_type:
            out.append(f"I-{entity_type}")
        else:
            out.append(f"B-{entity_type}")
        previous_type = entity_type
    return out


def _from_iob2(parsed: list[tuple[str, str | None]]) -> list[str]:
    """Returns the IOB2 tags unchanged after checking every ``I-X`` continues an ``X`` entity."""
    out, previous = [], ("O", None)
    for position, (prefix, entity_type) in enumerate(parsed, 1):
        tag = _tag(prefix, entity_type)
        if prefix not in ("O", "I", "B"):
            raise DataError(f"token {position}: tag {tag!r} is not allowed in the IOB2 scheme "
                            "(expected O, B-TYPE, I-TYPE); give the right `scheme` or leave it on auto")
        if prefix == "I" and previous[1] != entity_type:
            raise _sequence_error(position, tag, _tag(*previous) if position > 1 else "sentence start",
                                  f"in IOB2 an entity starts with B-{entity_type}")
        out.append(tag)
        previous = (prefix, entity_type)
    return out


def _from_bioes(parsed: list[tuple[str, str | None]]) -> list[str]:
    """Returns IOB2 tags for parsed BIOES tags, checking that every entity is B (I)* E or S."""
    out: list[str] = []
    open_type: str | None = None  # type of an entity begun (B/I) and not yet ended (E)
    for position, (prefix, entity_type) in enumerate(parsed, 1):
        tag = _tag(prefix, entity_type)
        previous = _tag(*parsed[position - 2]) if position > 1 else "sentence start"
        continues = prefix in ("I", "E")
        if continues and open_type != entity_type:
            raise _sequence_error(position, tag, previous,
                                  f"in BIOES an entity starts with B-{entity_type} or S-{entity_type}")
        if not continues and open_type is not None:
            raise _sequence_error(position, tag, previous,
                                  f"in BIOES the {open_type} entity must end with E-{open_type}")
        open_type = entity_type if prefix in ("B", "I") else None
        out.append("O" if entity_type is None else f"{'I' if continues else 'B'}-{entity_type}")
    if open_type is not None:
        raise DataError(f"token {len(parsed)}: the sentence ends inside a {open_type} entity; "
                        f"in BIOES an entity must end with E-{open_type}")
    return out


def build_label_list(entity_types: Iterable[str]) -> list[str]:
    """Returns the stable label list: ``"O"``, then ``B-T``, ``I-T`` for each type T sorted."""
    labels = ["O"]
    for entity_type in sorted(set(entity_types)):
        labels += [f"B-{entity_type}", f"I-{entity_type}"]
    return labels


def _entity_types(sentences: Iterable[Sentence]) -> set[str]:
    """Returns the set of entity types used in the tags of ``sentences``."""
    return {tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"}


# --------------------------------------------------------------------------------------------
# Readers. Internal readers return the sentences plus the line each sentence starts on, so that
# errors found later (scheme conversion, label sets) can still point into the file.

_Located = tuple[list[Sentence], list[int | None]]


def _check_file(path: Path, expected: str) -> None:
    """Raises DataError if ``path`` is not an existing file; ``expected`` describes what should be there."""
    if not path.exists():
        raise DataError(f"no such file; expected {expected}", path)
    if not path.is_file():
        raise DataError(f"is not a file; expected {expected}", path)


def _read_utf8_lines(path: Path) -> list[str]:
    """Returns the lines of a UTF-8 file (BOM dropped, line ends kept off).

    Raises DataError naming the line and byte offset of the first byte that is not UTF-8.
    """
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(f"byte 0x{raw[err.start]:02x} at byte offset {err.start} is not valid UTF-8; "
                        "the file must be UTF-8 encoded (re-encode it, e.g. with iconv -t UTF-8)",
                        path, line) from None
    return text.split("\n")


def _read_conll_located(path: str | os.PathLike) -> _Located:
    """Returns the sentences of a column file and the line number each sentence starts on."""
    path = Path(path)
    _check_file(path, "a CoNLL file (one 'token ... tag' per line, blank lines between sentences) "
                      "or a folder of data files")
    sentences: list[Sentence] = []
    starts: list[int | None] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0

    def flush() -> None:
        if tokens:
            sentences.append(Sentence(tokens.copy(), tags.copy()))
            starts.append(start)
            tokens.clear()
            tags.clear()

    for number, line in enumerate(_read_utf8_lines(path), 1):
        columns = [column for column in _COLUMN_SEP.split(line.strip(_ASCII_SPACE)) if column]
        if not columns or columns[0] == _DOCSTART:
            flush()
            continue
        if len(columns) < 2:
            raise DataError(f"expected 'token ... tag' (at least two whitespace-separated columns, "
                            f"the tag last), got {line.strip(_ASCII_SPACE)!r}", path, number)
        tag = columns[-1]
        if _TAG_RE.match(tag) is None:
            raise DataError(f"invalid tag {tag!r}; expected {_EXPECTED_TAGS}", path, number)
        if not tokens:
            start = number
        tokens.append(columns[0])
        tags.append(tag)
    flush()
    if not sentences:
        raise DataError("contains no sentences; expected a CoNLL file with one 'token ... tag' per line "
                        "and blank lines between sentences", path)
    return sentences, starts


def read_conll(path: str | os.PathLike) -> list[Sentence]:
    """Returns the sentences of a CoNLL-style column file, tags exactly as in the file.

    Token is the first column, tag the last; blank lines and ``-DOCSTART-`` lines end a
    sentence. Raises DataError (with file and line) for a missing or empty file, a line
    without tag, an invalid tag, or bytes that are not UTF-8.
    """
    return _read_conll_located(path)[0]


def _read_jsonl_located(path: str | os.PathLike) -> _Located:
    """Returns the sentences of a JSONL file and the line number of each record."""
    path = Path(path)
    _check_file(path, 'a JSONL file with one {"tokens": [...], "tags": [...]} object per line')
    sentences: list[Sentence] = []
    lines: list[int | None] = []
    for number, line in enumerate(_read_utf8_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg}); expected one JSON object per line", path, number) from None
        sentences.append(_record_to_sentence(record, path, number))
        lines.append(number)
    if not sentences:
        raise DataError('contains no sentences; expected one {"tokens": [...], "tags": [...]} object per line', path)
    return sentences, lines


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
        if _TAG_RE.match(tag) is None:
            raise DataError(f"invalid tag {tag!r}; expected {_EXPECTED_TAGS}", path, number)
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


def _read_file_located(path: str | os.PathLike) -> _Located:
    """Returns the sentences of a data file (dispatch by extension) and their start lines."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or (suffix == ".json" and path.is_file() and _is_json_lines(path)):
        return _read_jsonl_located(path)
    if suffix in (".json", ".parquet"):
        _check_file(path, f"a {suffix[1:]} file of records with 'tokens' and 'ner_tags' (or 'tags')")
        parts = read_hf_dataset(os.fspath(path))
        sentences = [sentence for part in parts.values() for sentence in part]
        return sentences, [None] * len(sentences)
    return _read_conll_located(path)


def read_file(path: str | os.PathLike) -> list[Sentence]:
    """Returns the sentences of one data file, tags as in the file.

    ``.jsonl`` (and ``.json`` with one object per line) -> :func:`read_jsonl`; other ``.json``
    and ``.parquet`` -> Hugging Face records via ``datasets``; anything else -> :func:`read_conll`.
    """
    return _read_file_located(path)[0]


# --------------------------------------------------------------------------------------------
# Hugging Face datasets


def is_saved_dataset(folder: Path) -> bool:
    """Returns True if ``folder`` was written by ``save_to_disk`` (Dataset or DatasetDict)."""
    return folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file())


def _canonical_split(name: str) -> str | None:
    """Returns "train"/"validation"/"test" for a split name or alias ("dev", "val"...), else None."""
    return _SPLIT_ALIASES.get(name.lower())


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
        split = "all" if name == "all" else _canonical_split(name)
        if split is None:
            raise DataError(f"split {name!r} is not one of train, validation (dev, valid, val), test; "
                            f"found splits: {', '.join(loaded)}", source)
        result.setdefault(split, []).extend(_dataset_to_sentences(dataset, source, name))
    return result


def _load_local_files(datasets: Any, path: Path) -> Any:
    """Returns a DatasetDict for a local parquet/json(l) file or a folder of them."""
    files = [path] if path.is_file() else _data_files(path)
    builders = {_HF_FILE_SUFFIXES.get(file.suffix.lower()) for file in files}
    if not files or None in builders or len(builders) != 1:
        raise DataError("expected a parquet or json/jsonl file, or a folder holding only files of one of "
                        f"these kinds; found: {', '.join(f.name for f in files) or 'no data files'}", path)
    data_files: dict[str, list[str]] = {}
    for file in files:
        split = split_for_file_name(file) or "all"
        data_files.setdefault(split, []).append(os.fspath(file))
    if "all" in data_files and len(data_files) > 1:
        raise DataError(f"cannot tell the split of {data_files['all'][0]}; {_SPLITS_HELP}", path)
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
            if _TAG_RE.match(tag) is None:
                raise DataError(f"{where}: invalid tag {tag!r}; expected {_EXPECTED_TAGS}", source)
        if tokens:
            sentences.append(Sentence(list(tokens), list(tags)))
    return sentences


# --------------------------------------------------------------------------------------------
# Assigning files to splits


def split_for_file_name(file: Path) -> str | None:
    """Returns the split a file name implies (see :data:`KNOWN_FILE_SPLITS`), or None.

    Raises DataError if the name suggests more than one split (e.g. ``train_test.conll``).
    """
    lower = file.name.lower()
    if lower in KNOWN_FILE_SPLITS:
        return KNOWN_FILE_SPLITS[lower]
    found = [split for split, hit in (("train", "train" in lower),
                                      ("validation", _VALIDATION_NAME_RE.search(lower) is not None),
                                      ("test", "test" in lower)) if hit]
    if len(found) > 1:
        raise DataError(f"the file name suggests several splits ({', '.join(found)}); {_SPLITS_HELP}", file)
    return found[0] if found else None


def is_ignored_file(file: Path) -> bool:
    """Returns True for files in a data folder that are not data (README, LICENSE, hidden...)."""
    lower = file.name.lower()
    return (lower.startswith(".") or lower.startswith(_IGNORED_PREFIXES) or lower.endswith(_IGNORED_SUFFIXES)
            or lower in _IGNORED_NAMES)


def _data_files(folder: Path) -> list[Path]:
    """Returns the data files of ``folder``, sorted by name, without documentation/hidden files."""
    return sorted(file for file in folder.iterdir() if file.is_file() and not is_ignored_file(file))


def _assign_folder(folder: Path) -> dict[str, list[Path]]:
    """Returns ``{split: files}`` for a folder of data files, using file names.

    A single data file whose name names no split is the whole corpus (``"all"``).
    """
    files = _data_files(folder)
    if not files:
        raise DataError("holds no data files; expected CoNLL/JSONL/parquet files such as train.conll, "
                        "validation.conll, test.conll", folder)
    assigned: dict[str, list[Path]] = {}
    for file in files:
        split = split_for_file_name(file)
        if split is None:
            if len(files) == 1:
                return {"all": [file]}
            raise DataError(f"cannot tell which split this file belongs to; {_SPLITS_HELP}", file)
        assigned.setdefault(split, []).append(file)
    return assigned


def _parse_splits(splits: str, base: Path) -> dict[str, list[Path]]:
    """Returns ``{split: [file]}`` from an explicit ``"train=a.txt,test=b.txt"`` parameter."""
    form = ("expected the form \"train=FILE,validation=FILE,test=FILE\" (validation and test optional; "
            "paths relative to the data folder)")
    assigned: dict[str, list[Path]] = {}
    for item in (part.strip() for part in splits.split(",")):
        name, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not name or not value:
            raise DataError(f"invalid value for parameter `splits`: {splits!r}; {form}")
        split = _canonical_split(name)
        if split is None:
            raise DataError(f"invalid value for parameter `splits`: unknown split {name!r} in {splits!r}; "
                            f"expected split names train, validation, test; {form}")
        if split in assigned:
            raise DataError(f"invalid value for parameter `splits`: split {split!r} given twice in {splits!r}; {form}")
        assigned[split] = [base / value]
    return assigned


# --------------------------------------------------------------------------------------------
# load_ner_data


@dataclass
class _Part:
    """Sentences read from one source, with what is needed to point at them in errors."""

    split: str  # train / validation / test / all
    source: str  # file path or dataset description
    sentences: list[Sentence]
    lines: list[int | None]

    def error(self, index: int, message: str) -> DataError:
        """Returns a DataError about sentence ``index``, located by line (files) or row (datasets)."""
        line = self.lines[index]
        if line is None:
            return DataError(f"sentence {index + 1}: {message}", self.source)
        return DataError(f"in the sentence starting on this line: {message}", self.source, line)


def _read_parts(data: str | os.PathLike, splits: str) -> list[_Part]:
    """Returns the raw parts (tags as in the source) that ``data`` and ``splits`` designate."""
    path = SAMPLE_DATA if os.fspath(data) == "sample" else Path(data)
    if splits.strip().lower() != "auto":
        base = path if path.is_dir() else path.parent
        return _read_assigned(_parse_splits(splits, base))
    if is_saved_dataset(path):
        return _hf_parts(os.fspath(path))
    if path.is_dir():
        return _read_assigned(_assign_folder(path))
    if path.is_file():
        return _read_assigned({"all": [path]})
    if os.fspath(data) == "sample":
        raise DataError("the packaged sample data is missing; expected train.conll, validation.conll and "
                        "test.conll in this folder", path)
    if _looks_like_hub_id(os.fspath(data)):
        return _hf_parts(os.fspath(data))
    raise DataError("no such file or folder; expected a CoNLL/JSONL/parquet file, a folder of such files, "
                    "a save_to_disk folder or a dataset hub id", path)


def _looks_like_hub_id(text: str) -> bool:
    """Returns True if ``text`` could be a hub id (``name`` or ``owner/name``) rather than a file path."""
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", text) is not None and \
        Path(text).suffix.lower() not in (".conll", ".txt", ".jsonl", ".json", ".parquet", ".tsv", ".iob", ".bio")


def _read_assigned(assigned: dict[str, list[Path]]) -> list[_Part]:
    """Returns one part per file of ``{split: files}``."""
    parts = []
    for split, files in assigned.items():
        for file in files:
            sentences, lines = _read_file_located(file)
            parts.append(_Part(split, os.fspath(file), sentences, lines))
    return parts


def _hf_parts(source: str) -> list[_Part]:
    """Returns one part per split of a Hugging Face dataset (folder or hub id)."""
    parts = []
    for split, sentences in read_hf_dataset(source).items():
        if sentences:
            parts.append(_Part(split, f"{source} [{split}]", sentences, [None] * len(sentences)))
    if not parts:
        raise DataError("contains no sentences", source)
    return parts


def _convert_parts(parts: list[_Part], scheme: str) -> tuple[str, list[str]]:
    """Returns ``(scheme used, notes)`` after converting the tags of ``parts`` to IOB2 in place.

    With ``scheme="auto"`` the scheme is detected over all parts; a detected IOB2 corpus may
    hold a few entities that start with ``I-`` (invalid in IOB2): they are read as entity
    starts (``B-``), as conlleval and seqeval read them, and counted in a note. A scheme given
    explicitly is applied strictly: an invalid sequence is an error.
    """
    detected = scheme == "auto"
    if detected:
        scheme = detect_scheme(sentence.tags for part in parts for sentence in part.sentences)
    lenient = "IOB1" if detected and scheme == "IOB2" else scheme
    repaired: list[str] = []
    total = 0
    for part in parts:
        count, first = 0, None
        for index, sentence in enumerate(part.sentences):
            try:
                tags = to_iob2(sentence.tags, lenient)
            except DataError as err:
                raise part.error(index, f"{err.message} (scheme {scheme})") from None
            if lenient != scheme and tags != sentence.tags:
                count += sum(old != new for old, new in zip(sentence.tags, tags))
                first = first or (f"sentence starting on line {part.lines[index]}" if part.lines[index]
                                  else f"sentence {index + 1}")
            part.sentences[index] = Sentence(sentence.tokens, tags)
        if count:
            repaired.append(f"{part.source}: {count} (first in the {first})")
            total += count
    notes = [f"tagging scheme {scheme} ({'detected' if detected else 'given'})"
             + ("" if scheme == "IOB2" else "; tags converted to IOB2")]
    if repaired:
        notes.append(f"{total} entities start with I- "
                     "(invalid in IOB2) and were read as entity starts (B-), as conlleval and seqeval read "
                     "them: " + "; ".join(repaired))
    return scheme, notes


def _declared_label_types(data: str | os.PathLike) -> set[str] | None:
    """Entity types of the ``labels.json`` that ``write_splits`` put beside the splits, if there is one.

    A prepared corpus carries its label list: a slice of its train split may lack a rare type
    that the full corpus (and so the label list) has.
    """
    path = Path(data) / "labels.json" if Path(data).is_dir() else None
    if path is None or not path.exists():
        return None
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"not valid JSON ({err}); expected a list of IOB2 labels", path) from None
    if not isinstance(labels, list) or not all(isinstance(x, str) and _TAG_RE.match(x) for x in labels):
        raise DataError('expected a JSON list of labels such as ["O", "B-ORG", "I-ORG"]', path)
    return {label[2:] for label in labels if label != "O"}


def _check_label_sets(parts: list[_Part], declared: set[str] | None = None) -> list[str]:
    """Returns the label list of the training parts (or the declared one); DataError if another
    split has types outside it."""
    train_types = _entity_types(s for p in parts if p.split in ("train", "all") for s in p.sentences)
    if declared is not None:
        undeclared = train_types - declared
        if undeclared:
            raise DataError(f"train has entity type(s) {', '.join(sorted(undeclared))} missing from labels.json")
        train_types = declared
    for part in parts:
        if part.split in ("train", "all"):
            continue
        extra = _entity_types(part.sentences) - train_types
        if extra:
            index = next(i for i, s in enumerate(part.sentences) if _entity_types([s]) & extra)
            raise part.error(index, f"label set differs between splits: the {part.split} split has entity "
                                    f"type(s) {', '.join(sorted(extra))} that train lacks (train has: "
                                    f"{', '.join(sorted(train_types)) or 'none'}); a model cannot learn them")
    return build_label_list(train_types)


def _percent(fraction: float) -> str:
    """Returns ``fraction`` as a short percentage, e.g. ``"10%"`` or ``"12.5%"``."""
    return f"{fraction * 100:g}%"


def _part_sizes(total: int, fractions: Sequence[float]) -> list[int] | None:
    """Returns the size of each fractional part of ``total`` (rounded half up); None if a part or the rest is empty."""
    sizes = [int(total * fraction + 0.5) for fraction in fractions]
    return None if min(sizes) == 0 or total - sum(sizes) <= 0 else sizes


def _shuffled_split(sentences: list[Sentence], fractions: Sequence[float], seed: int,
                    source: str, names: Sequence[str]) -> list[list[Sentence]]:
    """Returns ``len(fractions) + 1`` parts: one per fraction (named ``names[:-1]``), then the rest.

    Indices are shuffled with ``random.Random(seed)``; each part keeps the original order.
    Raises DataError if a part would be empty, saying how many sentences are needed.
    """
    total = len(sentences)
    sizes = _part_sizes(total, fractions)
    if sizes is None:
        needed = total + 1
        while _part_sizes(needed, fractions) is None:
            needed += 1
        sizes = [int(total * fraction + 0.5) for fraction in fractions]
        shares = ", ".join(f"{_percent(f)} for {n}" for f, n in zip(fractions, names))
        raise DataError(f"too few sentences to split ({total}): with {shares} the "
                        f"{names[sizes.index(0)] if 0 in sizes else names[-1]} split would be empty; "
                        f"at least {needed} sentences are needed (or give more files)", source)
    order = list(range(total))
    random.Random(seed).shuffle(order)
    parts, begin = [], 0
    for size in [*sizes, total - sum(sizes)]:
        parts.append([sentences[i] for i in sorted(order[begin:begin + size])])
        begin += size
    return parts


def _sentences(parts: list[_Part], split: str) -> list[Sentence]:
    """Returns the sentences of all parts assigned to ``split``, in part order."""
    return [sentence for part in parts if part.split == split for sentence in part.sentences]


def _sources(parts: list[_Part], split: str) -> str:
    """Returns the comma-separated sources of the parts assigned to ``split``."""
    return ", ".join(part.source for part in parts if part.split == split)


def _arrange_splits(parts: list[_Part], seed: int, validation_fraction: float, test_fraction: float
                    ) -> tuple[dict[str, list[Sentence]], dict[str, str], list[str]]:
    """Returns ``(splits, files, notes)`` after applying the split rules to the given parts."""
    given = {part.split for part in parts}
    if "all" in given or given == {"train"}:
        key = "all" if "all" in given else "train"
        source = _sources(parts, key)
        validation, test, train = _shuffled_split(_sentences(parts, key), [validation_fraction, test_fraction],
                                                   seed, source, ["validation", "test", "train"])
        rest = 1 - validation_fraction - test_fraction
        files = {"train": f"split from {source} (seed {seed}, {_percent(rest)})",
                 "validation": f"split from {source} (seed {seed}, {_percent(validation_fraction)})",
                 "test": f"split from {source} (seed {seed}, {_percent(test_fraction)})"}
        notes = [f"one source only ({source}): split into train/validation/test "
                 f"{_percent(rest)}/{_percent(validation_fraction)}/{_percent(test_fraction)} with seed {seed}"]
        return {"train": train, "validation": validation, "test": test}, files, notes
    if "train" not in given:
        raise DataError(f"no training data: found only {' and '.join(sorted(given))} "
                        f"({', '.join(p.source for p in parts)}); {_SPLITS_HELP}")
    files = {split: _sources(parts, split) for split in given}
    if given == set(SPLITS):
        return ({split: _sentences(parts, split) for split in SPLITS}, files,
                ["train, validation and test given: used as they are"])
    notes = []
    test = _sentences(parts, "test")
    if "test" not in given:  # train + validation: the given validation becomes the held-out test
        test, files["test"] = _sentences(parts, "validation"), files.pop("validation")
        notes.append(f"no test split: {files['test']} is used as test (the held-out evaluation split, "
                     "never used for selection)")
    validation, train = _shuffled_split(_sentences(parts, "train"), [validation_fraction], seed,
                                        files["train"], ["validation", "train"])
    files["validation"] = f"split from {files['train']} (seed {seed}, {_percent(validation_fraction)})"
    notes.append(f"no separate validation split: {_percent(validation_fraction)} of train split off "
                 f"for validation (seed {seed})")
    return {"train": train, "validation": validation, "test": test}, files, notes


def _check_parameters(scheme: str, seed: int, validation_fraction: float, test_fraction: float,
                      max_sentences: int) -> str:
    """Returns the canonical scheme ("auto" or one of ENTITY_SCHEMES); DataError for a bad parameter."""
    if not isinstance(scheme, str) or (scheme.lower() != "auto" and scheme.upper() not in ENTITY_SCHEMES):
        raise DataError(f"invalid value for parameter `scheme`: {scheme!r}; "
                        f"expected auto or one of {', '.join(ENTITY_SCHEMES)}")
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise DataError(f"invalid value for parameter `{name}`: {value!r}; "
                            "expected a number between 0 and 1 (exclusive)")
    if validation_fraction + test_fraction >= 1:
        raise DataError(f"invalid values for parameters `validation_fraction` + `test_fraction`: "
                        f"{validation_fraction} + {test_fraction} >= 1; expected a sum below 1 to leave data for train")
    for name, value in (("seed", seed), ("max_sentences", max_sentences)):
        if isinstance(value, bool) or not isinstance(value, int) or (name == "max_sentences" and value < 0):
            raise DataError(f"invalid value for parameter `{name}`: {value!r}; expected a "
                            f"{'non-negative ' if name == 'max_sentences' else ''}integer")
    return "auto" if scheme.lower() == "auto" else scheme.upper()


def load_ner_data(data: str | os.PathLike, *, splits: str = "auto", scheme: str = "auto", seed: int = 42,
                  validation_fraction: float = 0.1, test_fraction: float = 0.1, max_sentences: int = 0) -> NerData:
    """Returns the corpus ``data`` as IOB2 train/validation/test splits with labels and notes.

    ``data``: ``"sample"``, a file, a folder of data files, a ``save_to_disk`` folder or a hub
    id. ``splits``: "auto" (by file name) or e.g. ``"train=FIN5.txt,test=FIN3.txt"``.
    Split rules: train+validation+test are used as given; train+test -> validation is
    ``validation_fraction`` of train; train+validation -> that validation becomes test and a
    fresh validation is split off train; a single source -> split three ways. Shuffles use
    ``random.Random(seed)``. ``scheme``: "auto" (detected over all splits) or the scheme of the
    source. The label list comes from train; another split with an extra type is an error.
    ``max_sentences`` > 0 keeps the first N sentences of each split (after splitting).
    """
    scheme = _check_parameters(scheme, seed, validation_fraction, test_fraction, max_sentences)
    if not isinstance(splits, str):
        raise DataError(f"invalid value for parameter `splits`: {splits!r}; "
                        "expected \"auto\" or \"train=FILE,test=FILE\"")
    parts = _read_parts(data, splits)
    used_scheme, scheme_notes = _convert_parts(parts, scheme)
    labels = _check_label_sets(parts, _declared_label_types(data))
    arranged, files, notes = _arrange_splits(parts, seed, validation_fraction, test_fraction)
    for split in SPLITS:
        if not arranged[split]:
            raise DataError(f"the {split} split is empty; every split needs at least one sentence", files[split])
    notes += scheme_notes
    if max_sentences:
        arranged = {split: sentences[:max_sentences] for split, sentences in arranged.items()}
        notes.append(f"max_sentences={max_sentences}: only the first {max_sentences} sentences of each split kept")
    return NerData(splits=arranged, labels=labels, scheme=used_scheme, files=files, notes=notes)


# --------------------------------------------------------------------------------------------
# Statistics and export


def _quantile(sorted_values: list[int], q: float) -> float:
    """Returns the ``q`` quantile of sorted values by linear interpolation (numpy's default), 0.0 if empty."""
    if not sorted_values:
        return 0.0
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low))


def _split_stats(sentences: list[Sentence], entity_types: list[str]) -> dict[str, Any]:
    """Returns the statistics of one split: counts, entities per type, sentence lengths in tokens."""
    lengths = sorted(len(sentence.tokens) for sentence in sentences)
    entities = Counter(tag[2:] for sentence in sentences for tag in sentence.tags if tag.startswith("B-"))
    count = len(lengths)
    return {
        "sentences": count,
        "tokens": sum(lengths),
        "entities": sum(entities.values()),
        "entities_by_type": {t: entities.get(t, 0) for t in sorted(set(entity_types) | set(entities))},
        "len_mean": sum(lengths) / count if count else 0.0,
        "len_p50": _quantile(lengths, 0.5),
        "len_p95": _quantile(lengths, 0.95),
        "len_max": lengths[-1] if lengths else 0,
        "share_len_over_128": sum(n > 128 for n in lengths) / count if count else 0.0,
        "share_len_over_256": sum(n > 256 for n in lengths) / count if count else 0.0,
    }


def dataset_stats(data: NerData) -> dict:
    """Returns JSON-serialisable statistics: one dict per split plus labels, scheme, files, notes.

    Per split: ``sentences``, ``tokens``, ``entities`` (a ``B-`` tag starts one),
    ``entities_by_type``, sentence length in tokens (``len_mean``, ``len_p50``, ``len_p95``
    (linear interpolation), ``len_max``) and the share of sentences longer than 128 and 256
    tokens (``share_len_over_128``, ``share_len_over_256``, in [0, 1]).
    """
    stats: dict[str, Any] = {split: _split_stats(data.splits.get(split, []), data.entity_types) for split in SPLITS}
    stats.update(labels=list(data.labels), scheme=data.scheme, files=dict(data.files), notes=list(data.notes))
    return stats


def _metric_name(*parts: str) -> str:
    """Returns ``parts`` joined by "_" with every character outside [A-Za-z0-9_] replaced by "_"."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def stats_metrics(stats: dict) -> dict[str, float]:
    """Returns flat MLflow metrics from :func:`dataset_stats` output.

    Names are ``{split}_{statistic}`` (``train_sentences``, ``train_len_p95``...) and
    ``{split}_entities_{TYPE}`` per entity type, plus ``num_labels``; only [A-Za-z0-9_].
    """
    metrics: dict[str, float] = {}
    for split in SPLITS:
        for key, value in stats.get(split, {}).items():
            if key == "entities_by_type":
                for entity_type, count in value.items():
                    metrics[_metric_name(split, "entities", entity_type)] = float(count)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[_metric_name(split, key)] = float(value)
    if "labels" in stats:
        metrics["num_labels"] = float(len(stats["labels"]))
    return metrics


def write_splits(data: NerData, out_dir: str | os.PathLike) -> None:
    """Writes ``out_dir/{train,validation,test}.jsonl`` (``tokens``/``tags``) and ``labels.json``.

    ``load_ner_data(out_dir)`` reads them back as the same splits and labels (scheme IOB2).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for sentence in data.splits[split]:
                handle.write(json.dumps({"tokens": sentence.tokens, "tags": sentence.tags}, ensure_ascii=False) + "\n")
    (out / "labels.json").write_text(json.dumps(data.labels, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
