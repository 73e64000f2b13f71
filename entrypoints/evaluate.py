"""MLflow entry point `evaluate`: runs findistill.stages.evaluate."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
