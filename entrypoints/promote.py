"""MLflow entry point `promote`: runs findistill.stages.promote."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
