"""``python -m findistill <stage> --param value ...`` (and ``torchrun ... -m findistill <stage> ...``)."""

import sys

from findistill.cli import main

sys.exit(main())
