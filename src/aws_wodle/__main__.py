"""``python -m aws_wodle``: the same as the ``aws-wodle`` command."""

import sys

from .runtime.cli import main

sys.exit(main())
