"""``python -m robot_rl.cli``: the ``robot-rl`` command."""

import sys

from robot_rl.cli import main

sys.exit(main())
