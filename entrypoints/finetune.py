"""MLflow entry point `finetune`: runs findistill.stages.finetune."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
