"""MLflow entry point `analyze_tokenization`: runs findistill.stages.analyze_tokenization."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
