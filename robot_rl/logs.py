"""The log format of robot_rl's commands and benchmarks (``12:00:00 robot_rl.train: ...``)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(name)s: %(message)s"
DATEFMT = "%H:%M:%S"


def setup_logging(level: int = logging.INFO) -> None:
    """Log ``level`` and above to stderr, time-stamped and named; like ``logging.basicConfig``,
    it does nothing when the root logger already has a handler."""
    logging.basicConfig(level=level, format=FORMAT, datefmt=DATEFMT)
