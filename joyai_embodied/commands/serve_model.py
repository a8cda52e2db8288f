"""``joyai-embodied serve-model``: the ZMQ model server. Its options and its loop live with the server
(:mod:`joyai_embodied.serve.zmq_command`); this module only hooks them into the command line.

    joyai-embodied serve-model --preset joyai-image --bind tcp://127.0.0.1:5555
    joyai-embodied serve-model --generate-keys keys/      # CURVE key pairs, then exit
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import run_as_script


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``serve-model`` options (the server's own ``add_arguments``)."""
    from ..serve import zmq_command  # pyzmq is needed from here on

    zmq_command.add_arguments(parser)
    from ..distributed.cli import add_ray_arguments

    add_ray_arguments(parser)  # --ray --replicas N [--ray-address ADDR]: the model on Ray Serve behind the ZMQ server


def run(args: argparse.Namespace) -> int:
    """Serves until SIGINT/SIGTERM (see the server's ``run`` for the exit codes)."""
    from ..serve import zmq_command

    if getattr(args, "ray", False):
        from ..distributed.cli import run_serve

        return run_serve(args)
    return zmq_command.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("serve-model", argv)


if __name__ == "__main__":
    sys.exit(main())
