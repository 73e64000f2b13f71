"""MLflow entry point `evaluate` (see findistill.stages.evaluate for what it logs)."""

import sys

from findistill.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
