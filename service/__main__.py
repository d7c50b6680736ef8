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
    """Run ``service.cli.main`` on the command line's arguments; returns the exit status, after
    which the process ends."""
    import gc

    # The cyclic garbage collector off while the command line's modules are imported, then their
    # objects kept out of every later collection (``gc.freeze``), as ``cli.cmd_poll`` does around
    # the stack it imports (``heap.collector_paused``, which says why).
    gc.disable()
    from service.cli import main as run

    gc.freeze()
    gc.enable()
    status = run()
    # What is left is the OS's to free: the interpreter's shutdown then clears the modules without
    # the cyclic garbage collector walking every object they hold (about 0.25 s of CPU with the
    # modules `poll --once` imports; atexit hooks still run).
    gc.freeze()
    return status


if __name__ == "__main__":
    sys.exit(main())
