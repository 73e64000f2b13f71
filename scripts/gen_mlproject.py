"""Regenerate MLproject from the stage registry and configs (tests/test_cli.py checks they agree).

    .venv/bin/python scripts/gen_mlproject.py
"""

import dataclasses
import typing
from pathlib import Path

from findistill.stages import STAGES

out = ["# findistill: one entry point per stage. Every parameter arrives as a string and is validated",
       "# into the stage's typed Config (findistill/stages/<entry point>.py); scripts/gen_mlproject.py writes",
       "# this file and tests/test_cli.py keeps it in sync.",
       "# Example: mlflow run . -e finetune -P data=../shared/data/sec-filings -P epochs=5 --env-manager local",
       "name: findistill", "", "python_env: python_env.yaml", "", "entry_points:"]
for name, module in STAGES.items():
    summary = " ".join(module.__doc__.split("\n\n")[0].split()).split(": ", 1)[1]
    out += [f"  # {summary}", f"  {name}:", "    parameters:"]
    hints = typing.get_type_hints(module.Config)
    args = []
    for f in dataclasses.fields(module.Config):
        t = hints[f.name]
        typ = "float" if t in (int, float) else "string"
        if f.name in getattr(module.Config, "REQUIRED", ()):  # no default: MLflow makes it required
            out.append(f"      {f.name}: {{type: string}}")
        else:
            d = f.default
            d = str(d).lower() if isinstance(d, bool) else d
            d = '""' if d == "" else d
            out.append(f"      {f.name}: {{type: {typ}, default: {d}}}")
        args.append(f"--{f.name} {{{f.name}}}")
    out.append(f'    command: "python entrypoints/{name}.py ' + " ".join(args) + '"')
    out.append("")
(Path(__file__).resolve().parents[1] / "MLproject").write_text("\n".join(out))
