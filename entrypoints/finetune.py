"""MLflow entry point `finetune` (see findistill.stages.finetune for what it logs)."""

import sys

from findistill.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
