"""``python -m service`` and the ``newsloom`` console script: run ``service.cli.main``.

``service.cli`` (the web stack, SQLAlchemy, the pollers) is imported when the command runs, not
when this module is imported: multiprocessing's ``spawn`` makes every worker process import its
parent's main module again, and a worker that imported ``service.cli`` would carry about 40 MiB of
modules it never uses (``docs/operations.md``, "Memory"). Multiprocessing skips a main module
named ``__main__`` (``python -m service``) altogether, and the console script's one import is this
module's.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Run the ``newsloom`` command line (``service.cli.main``); returns the exit status."""
    from service.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
