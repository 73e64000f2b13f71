"""MLflow entry point `train_tokenizer`: runs findistill.stages.train_tokenizer (the findistill package is installed by `make` or python_env.yaml)."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
