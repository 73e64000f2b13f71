"""MLflow entry point `train_tokenizer`: runs findistill.stages.train_tokenizer."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
