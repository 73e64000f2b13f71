"""MLflow entry point `main` (see findistill.pipeline.main for what it logs)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's findistill, installed or not

from findistill.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["main", *sys.argv[1:]]))
