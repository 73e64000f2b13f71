"""MLflow entry point `search`: runs findistill.stages.search."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
