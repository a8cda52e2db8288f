"""``python -m joyai_embodied.commands ARGS`` is ``joyai-embodied ARGS``."""

import sys

from . import main

sys.exit(main())
