import sys

from augpe.cli import main

sys.exit(main())
