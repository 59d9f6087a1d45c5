"""`python -m augpe.cli`: the same as the `augpe` command."""

import sys

from augpe.cli import main

sys.exit(main())
