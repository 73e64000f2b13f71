"""MLflow entry point `quantize`: runs findistill.stages.quantize."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
