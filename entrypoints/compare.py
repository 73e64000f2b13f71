"""MLflow entry point `compare`: runs findistill.stages.compare."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
