"""`augpe` command line: run, demo, account, budget, release, audit, eval.

Errors a user can fix are printed as one clear message (no stack trace) with exit status 2.

    parser.py    build_parser: every subcommand, flag and help text (+ the config reference)
    commands.py  cmd_*: one library call per subcommand, then print
    printing.py  print_run_summary: the summary after `augpe run` / `augpe demo`
"""

from __future__ import annotations

import errno
import logging
import sys

from augpe.cli.parser import build_parser
from augpe.cli.printing import print_run_summary
from augpe.errors import AugpeError

__all__ = ["build_parser", "main", "print_run_summary"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[augpe %(asctime)s] %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "sentence_transformers", "faiss", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except AugpeError as err:
        print(f"augpe: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"augpe: error: the disk is full ({err}): free space, then try again", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("augpe: interrupted; resume with `augpe run --resume RUN_DIR`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
