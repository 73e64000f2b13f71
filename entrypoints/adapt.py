"""MLflow entry point `adapt`: runs findistill.stages.adapt (the findistill package is installed by `make` or python_env.yaml)."""

from findistill.cli import entry_point

if __name__ == "__main__":
    entry_point(__file__)
