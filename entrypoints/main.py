"""MLflow entry point `main`: runs findistill.stages.main."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
