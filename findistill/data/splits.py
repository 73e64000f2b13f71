"""From a data reference to train/validation/test splits: :func:`load_ner_data`.

``data`` is ``"sample"`` (the corpus bundled with findistill), a file (CoNLL columns, JSONL, JSON or
Parquet records), a folder of such files assigned to splits by file name (``train``/``dev``/``test``
and the well-known names of :data:`KNOWN_FILE_SPLITS`), a ``save_to_disk`` folder or a Hub id.
Missing splits are cut with a seed, by whole documents where the source marks them (``-DOCSTART-``);
every decision is recorded in ``NerData.notes``.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from findistill.data.corpus import ENTITY_SCHEMES, SAMPLE_DATA, SPLITS, DataError, NerData, Sentence
from findistill.data.files import SPLITS_HELP, canonical_split, list_data_files, split_for_file_name
from findistill.data.readers import is_saved_dataset, read_file_located, read_hf_dataset
from findistill.data.tags import TAG_RE, build_label_list, detect_scheme, entity_types, to_iob2


def _assign_folder(folder: Path) -> dict[str, list[Path]]:
    """Returns ``{split: files}`` for a folder of data files, using file names.

    A single data file whose name names no split is the whole corpus (``"all"``).
    """
    files = list_data_files(folder)
    if not files:
        raise DataError("holds no data files; expected CoNLL/JSONL/parquet files such as train.conll, "
                        "validation.conll, test.conll", folder)
    assigned: dict[str, list[Path]] = {}
    for file in files:
        split = split_for_file_name(file)
        if split is None:
            if len(files) == 1:
                return {"all": [file]}
            raise DataError(f"cannot tell which split this file belongs to; {SPLITS_HELP}", file)
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
        split = canonical_split(name)
        if split is None:
            raise DataError(f"invalid value for parameter `splits`: unknown split {name!r} in {splits!r}; "
                            f"expected split names train, validation, test; {form}")
        if split in assigned:
            raise DataError(f"invalid value for parameter `splits`: split {split!r} given twice in {splits!r}; {form}")
        assigned[split] = [base / value]
    return assigned


@dataclass
class _Part:
    """Sentences read from one source, with what is needed to point at them in errors."""

    split: str  # train / validation / test / all
    source: str  # file path or dataset description
    sentences: list[Sentence]
    lines: list[int | None]
    documents: list[int] | None = None  # document of each sentence; None: the source marks none

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
            sentences, lines, documents = read_file_located(file)
            parts.append(_Part(split, os.fspath(file), sentences, lines, documents))
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
    if not isinstance(labels, list) or not all(isinstance(x, str) and TAG_RE.match(x) for x in labels):
        raise DataError('expected a JSON list of labels such as ["O", "B-ORG", "I-ORG"]', path)
    return {label[2:] for label in labels if label != "O"}


def _check_label_sets(parts: list[_Part], declared: set[str] | None = None) -> list[str]:
    """Returns the label list of the training parts (or the declared one); DataError if another
    split has types outside it."""
    train_types = entity_types(s for p in parts if p.split in ("train", "all") for s in p.sentences)
    if declared is not None:
        undeclared = train_types - declared
        if undeclared:
            raise DataError(f"train has entity type(s) {', '.join(sorted(undeclared))} missing from labels.json")
        train_types = declared
    for part in parts:
        if part.split in ("train", "all"):
            continue
        extra = entity_types(part.sentences) - train_types
        if extra:
            index = next(i for i, s in enumerate(part.sentences) if entity_types([s]) & extra)
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


def _documents(parts: list[_Part], split: str) -> list[tuple[int, int]] | None:
    """Returns the document of each sentence of :func:`_sentences` as ``(part number, document)``.

    None if a part assigned to ``split`` marks no document boundaries.
    """
    chosen = [(number, part) for number, part in enumerate(parts) if part.split == split]
    if any(part.documents is None for _, part in chosen):
        return None
    return [(number, document) for number, part in chosen for document in part.documents]  # type: ignore[union-attr]


def _plural(count: int, noun: str) -> str:
    """Returns e.g. ``"1 document"`` or ``"3 documents"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _pick_documents(sizes: dict, order: list, target: float, keep: int) -> list:
    """Returns the documents of ``order`` that make one part of about ``target`` sentences.

    Goes through ``order`` and takes each document that brings the part's sentence count closer
    to ``target``, leaving at least ``keep`` documents untaken. If none does (every document holds
    at least twice the target), the smallest document is the part.
    """
    picked, count = [], 0
    for document in order:
        if len(order) - len(picked) == keep:
            break
        if abs(count + sizes[document] - target) < abs(count - target):
            picked.append(document)
            count += sizes[document]
    return picked or [min(order, key=sizes.__getitem__)]


def _document_split(sentences: list[Sentence], documents: list, fractions: Sequence[float],
                    seed: int) -> tuple[list[list[Sentence]], list[int]]:
    """Returns ``len(fractions) + 1`` parts made of whole documents, and the documents in each.

    The documents are shuffled with ``random.Random(seed)``; part ``i`` takes documents in that
    order until it holds about ``fractions[i]`` of the sentences (at least one document each,
    one left for every later part and the rest). Each part keeps the original sentence order.
    """
    sizes = Counter(documents)
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    assignment: dict = {}
    for number, fraction in enumerate(fractions):
        picked = _pick_documents(sizes, order, fraction * len(sentences), keep=len(fractions) - number)
        assignment.update(dict.fromkeys(picked, number))
        order = [document for document in order if document not in assignment]
    assignment.update(dict.fromkeys(order, len(fractions)))
    parts: list[list[Sentence]] = [[] for _ in range(len(fractions) + 1)]
    for sentence, document in zip(sentences, documents):
        parts[assignment[document]].append(sentence)
    counts = Counter(assignment.values())
    return parts, [counts[number] for number in range(len(fractions) + 1)]


def _cut(sentences: list[Sentence], documents: list | None, fractions: Sequence[float], seed: int,
         source: str, names: Sequence[str], block: int = 0) -> tuple[list[list[Sentence]], list[str], str]:
    """Returns ``(parts, notes, unit)``: ``sentences`` cut into one part per fraction and the rest.

    By whole documents (``unit`` "document") when ``documents`` gives at least one document per
    part, so that no document has sentences in two parts. Without document boundaries and with
    ``block`` > 0, runs of ``block`` consecutive sentences stand in for documents (``unit``
    "block"): in a source that keeps each document's sentences together, only documents that
    straddle a block boundary can then have sentences in two parts. Else by sentences drawn at
    random (``unit`` "sentence", see :func:`_shuffled_split`). ``names`` name the parts, the rest
    last. The notes say which way each part was cut and how much it holds (by sentences: the
    rest is not noted).
    """
    unit, noun, of = "document", "whole document", ""
    if documents is None and block > 0:
        documents = [index // block for index in range(len(sentences))]
        unit, noun, of = "block", "block", f" of {block} consecutive sentences"
    count = len(set(documents)) if documents is not None else 0
    if documents is None:
        reason = "no document boundaries"
    elif count == 1:
        reason = "only one document"
    elif count <= len(fractions):
        reason = f"only {count} {unit}s, too few for whole-{unit} {', '.join(names[:-1])} and {names[-1]} parts"
    else:
        parts, taken = _document_split(sentences, documents, fractions, seed)
        notes = [f"{name}: {_plural(taken[number], noun)}{of} of {source} (seed {seed}): "
                 f"{len(parts[number])} of {len(sentences)} sentences" for number, name in enumerate(names[:-1])]
        notes.append(f"{names[-1]}: the other {_plural(taken[-1], unit)} of {source}: "
                     f"{len(parts[-1])} of {len(sentences)} sentences")
        return parts, notes, unit
    parts = _shuffled_split(sentences, fractions, seed, source, names)
    notes = [f"{name}: sentence-level split ({reason}): {len(parts[number])} of {len(sentences)} sentences "
             f"of {source} drawn at random (seed {seed})" for number, name in enumerate(names[:-1])]
    return parts, notes, "sentence"


def _cut_description(source: str, seed: int, unit: str, fraction: float, part: list[Sentence]) -> str:
    """Returns the ``files`` entry of a split cut from ``source``: share asked for, or size by documents."""
    if unit in ("document", "block"):
        return f"split from {source} (seed {seed}, whole {unit}s, {len(part)} sentences)"
    return f"split from {source} (seed {seed}, {_percent(fraction)})"


def _arrange_splits(parts: list[_Part], seed: int, validation_fraction: float, test_fraction: float,
                    block: int = 0) -> tuple[dict[str, list[Sentence]], dict[str, str], list[str], str]:
    """Returns ``(splits, files, notes, validation unit)`` after applying the split rules to the given parts.

    The validation unit is "given" when validation is read as given, else the unit of :func:`_cut`
    (``block``: its stand-in documents for sources without boundaries).
    """
    given = {part.split for part in parts}
    if "all" in given or given == {"train"}:
        key = "all" if "all" in given else "train"
        source = _sources(parts, key)
        (validation, test, train), cut_notes, unit = _cut(
            _sentences(parts, key), _documents(parts, key), [validation_fraction, test_fraction], seed, source,
            ["validation", "test", "train"], block)
        rest = 1 - validation_fraction - test_fraction
        files = {"train": _cut_description(source, seed, unit, rest, train),
                 "validation": _cut_description(source, seed, unit, validation_fraction, validation),
                 "test": _cut_description(source, seed, unit, test_fraction, test)}
        notes = [f"one source only ({source}): split into train/validation/test "
                 f"{_percent(rest)}/{_percent(validation_fraction)}/{_percent(test_fraction)} with seed {seed}"
                 + (f" (aimed at, by whole {unit}s)" if unit in ("document", "block") else ""), *cut_notes]
        return {"train": train, "validation": validation, "test": test}, files, notes, unit
    if "train" not in given:
        raise DataError(f"no training data: found only {' and '.join(sorted(given))} "
                        f"({', '.join(p.source for p in parts)}); {SPLITS_HELP}")
    files = {split: _sources(parts, split) for split in given}
    if given == set(SPLITS):
        return ({split: _sentences(parts, split) for split in SPLITS}, files,
                ["train, validation and test given: used as they are"], "given")
    notes = []
    test = _sentences(parts, "test")
    if "test" not in given:  # train + validation: the given validation becomes the held-out test
        test, files["test"] = _sentences(parts, "validation"), files.pop("validation")
        notes.append(f"no test split: {files['test']} is used as test (the held-out evaluation split, "
                     "never used for selection)")
    (validation, train), cut_notes, unit = _cut(_sentences(parts, "train"), _documents(parts, "train"),
                                                [validation_fraction], seed, files["train"], ["validation", "train"],
                                                block)
    files["validation"] = _cut_description(files["train"], seed, unit, validation_fraction, validation)
    notes.append(f"no separate validation split: {_percent(validation_fraction)} of train split off "
                 f"for validation (seed {seed})" + (f", by whole {unit}s" if unit in ("document", "block") else ""))
    notes += cut_notes
    return {"train": train, "validation": validation, "test": test}, files, notes, unit


def _check_parameters(scheme: str, seed: int, validation_fraction: float, test_fraction: float,
                      max_sentences: int, split_blocks: int = 0) -> str:
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
    for name, value in (("seed", seed), ("max_sentences", max_sentences), ("split_blocks", split_blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or (name != "seed" and value < 0):
            raise DataError(f"invalid value for parameter `{name}`: {value!r}; expected a "
                            f"{'non-negative ' if name != 'seed' else ''}integer")
    return "auto" if scheme.lower() == "auto" else scheme.upper()


def load_ner_data(data: str | os.PathLike, *, splits: str = "auto", scheme: str = "auto", seed: int = 42,
                  validation_fraction: float = 0.1, test_fraction: float = 0.1, max_sentences: int = 0,
                  split_blocks: int = 0) -> NerData:
    """Returns the corpus ``data`` as IOB2 train/validation/test splits with labels and notes.

    ``data``: ``"sample"``, a file, a folder of data files, a ``save_to_disk`` folder or a hub
    id. ``splits``: "auto" (by file name) or e.g. ``"train=FIN5.txt,test=FIN3.txt"``.
    Split rules: train+validation+test are used as given; train+test -> validation is
    ``validation_fraction`` of train; train+validation -> that validation becomes test and a
    fresh validation is split off train; a single source -> split three ways. A part cut from a
    source with ``-DOCSTART-`` boundaries is made of whole documents (about its fraction of the
    sentences, at least one document), so no document has sentences in two splits; a source
    without boundaries is cut in runs of ``split_blocks`` consecutive sentences taken as documents
    when ``split_blocks`` > 0, else (and with too few documents) by sentences drawn at random.
    ``NerData.validation_unit`` and the notes say which. Shuffles use ``random.Random(seed)``.
    ``scheme``: "auto" (detected over all splits) or the scheme of the source. The label list
    comes from train; another split with an extra type is an error.
    ``max_sentences`` > 0 keeps the first N sentences of each split (after splitting).
    """
    scheme = _check_parameters(scheme, seed, validation_fraction, test_fraction, max_sentences, split_blocks)
    if not isinstance(splits, str):
        raise DataError(f"invalid value for parameter `splits`: {splits!r}; "
                        "expected \"auto\" or \"train=FILE,test=FILE\"")
    parts = _read_parts(data, splits)
    used_scheme, scheme_notes = _convert_parts(parts, scheme)
    labels = _check_label_sets(parts, _declared_label_types(data))
    arranged, files, notes, validation_unit = _arrange_splits(parts, seed, validation_fraction, test_fraction,
                                                              split_blocks)
    for split in SPLITS:
        if not arranged[split]:
            raise DataError(f"the {split} split is empty; every split needs at least one sentence", files[split])
    notes += scheme_notes
    if max_sentences:
        arranged = {split: sentences[:max_sentences] for split, sentences in arranged.items()}
        notes.append(f"max_sentences={max_sentences}: only the first {max_sentences} sentences of each split kept")
    return NerData(splits=arranged, labels=labels, scheme=used_scheme, files=files, notes=notes,
                   validation_unit=validation_unit)


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
