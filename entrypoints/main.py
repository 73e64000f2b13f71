"""MLflow entry point `main` (see findistill.stages.main for what it logs)."""

import sys

from findistill.cli import main

if __name__ == "__main__":
    sys.exit(main(["main", *sys.argv[1:]]))
