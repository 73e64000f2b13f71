"""Tag schemes: detection of IO / IOB1 / IOB2 / BIOES, conversion to IOB2, label lists and entity spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from findistill.data.corpus import ENTITY_SCHEMES, DataError, Sentence

TAG_RE = re.compile(r"^(?:O|([BIES])-([A-Za-z][A-Za-z0-9_]*))$")
EXPECTED_TAGS = ("'O' or B-/I-/E-/S- followed by an entity type, e.g. B-ORG, I-PER "
                  "(type: a letter, then letters, digits or _)")


def _parse_tag(tag: str) -> tuple[str, str | None]:
    """Returns ``(prefix, type)`` of a tag: ``("O", None)`` or e.g. ``("B", "ORG")``.

    Raises DataError (without location) for a tag of no known form.
    """
    match = TAG_RE.match(tag)
    if match is None:
        raise DataError(f"invalid tag {tag!r}; expected {EXPECTED_TAGS}")
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


def entity_types(sentences: Iterable[Sentence]) -> set[str]:
    """Returns the set of entity types used in the tags of ``sentences``."""
    return {tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"}


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Returns the entities of one IOB2 tag sequence as ``(type, start, end)``, ``end`` exclusive.

    The entities are seqeval's (``get_entities``, its default conlleval-style reading): a
    ``B-X`` starts an entity, an ``I-X`` continues an ``X`` entity, and an ``I-X`` that does not
    (after ``O`` or another type) starts one.
    """
    # imported here: seqeval's metrics package imports scikit-learn, slow to load for the readers
    from seqeval.metrics.sequence_labeling import get_entities

    return [(entity_type, start, end + 1) for entity_type, start, end in get_entities(list(tags))]
