"""``python -m service`` and the ``newsloom`` console script: the command line (``service.cli``).

This module imports only ``sys`` at its top, on purpose. Worker processes start with ``spawn``
(``service.ingest.workers``), and a spawned child first imports the parent's main module: the
console script (which imports its entry point's module) or, under ``python -m``, the module run.
Were that ``service.cli``, every worker would import the database, API and migration stack it
never uses (about 2.3 s of start-up per worker on the project machine, docs/benchmarks.md);
multiprocessing skips a package's ``__main__`` altogether, and the console script's entry point,
this ``main``, costs nothing to import.
"""

import sys


def main() -> int:
    """Run ``service.cli.main`` on the command line's arguments; returns the exit status."""
    from service.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
