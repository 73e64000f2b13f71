"""MLflow entry point `prepare` (see findistill.stages.prepare for what it logs)."""

import sys

from findistill.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", *sys.argv[1:]]))
