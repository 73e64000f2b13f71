"""Which split a data file holds, told by its name, and which files of a folder are data.
"""

from __future__ import annotations

import re
from pathlib import Path

from findistill.data.corpus import DataError

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


_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                  "val": "validation", "dev": "validation", "test": "test", "testing": "test"}


_VALIDATION_NAME_RE = re.compile(r"(?<![a-z])(?:validation|valid|dev|val)(?![a-z])")


_IGNORED_PREFIXES = ("readme", "license", "licence", "copying")


_IGNORED_SUFFIXES = (".md", ".rst", ".html", ".pdf")


_IGNORED_NAMES = ("labels.json",)  # written by write_splits next to the split files


SPLITS_HELP = ("name the files after their split (train / validation, valid, dev, val / test) or give the "
                "`splits` parameter, e.g. splits=\"train=FIN5.txt,test=FIN3.txt\" (paths relative to the folder)")


def canonical_split(name: str) -> str | None:
    """Returns "train"/"validation"/"test" for a split name or alias ("dev", "val"...), else None."""
    return _SPLIT_ALIASES.get(name.lower())


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
        raise DataError(f"the file name suggests several splits ({', '.join(found)}); {SPLITS_HELP}", file)
    return found[0] if found else None


def is_ignored_file(file: Path) -> bool:
    """Returns True for files in a data folder that are not data (README, LICENSE, hidden...)."""
    lower = file.name.lower()
    return (lower.startswith(".") or lower.startswith(_IGNORED_PREFIXES) or lower.endswith(_IGNORED_SUFFIXES)
            or lower in _IGNORED_NAMES)


def list_data_files(folder: Path) -> list[Path]:
    """Returns the data files of ``folder``, sorted by name, without documentation/hidden files."""
    return sorted(file for file in folder.iterdir() if file.is_file() and not is_ignored_file(file))
