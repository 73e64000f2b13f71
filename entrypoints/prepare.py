"""MLflow entry point `prepare`: runs findistill.stages.prepare."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
