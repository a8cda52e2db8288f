"""Former home of the command line, now :mod:`joyai_embodied.commands`; kept so that
``python -m joyai_embodied.cli ARGS`` and ``from joyai_embodied.cli import main`` keep working."""

from __future__ import annotations

import sys

from .commands import SUBCOMMANDS, main, positive_int

__all__ = ["SUBCOMMANDS", "main", "positive_int"]

if __name__ == "__main__":
    sys.exit(main())
