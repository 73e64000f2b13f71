"""MLflow entry point `adapt`: runs findistill.stages.adapt."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
