"""MLflow entry point `distill`: runs findistill.stages.distill."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
