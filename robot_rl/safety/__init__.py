"""Safety between every command and the arm: pure filters composed into a chain, a
watchdog for stale commands and observations, an e-stop latch, per-robot limits, and
:class:`SafeArm`, the wrapper that makes every command pass them."""

from robot_rl.safety.arm import ArmCapabilityError, SafeArm, SafeGripper
from robot_rl.safety.chain import SafetyChain, default_chain
from robot_rl.safety.command import HOLD, Command, RobotState, SafetyEvent
from robot_rl.safety.estop import EStop
from robot_rl.safety.limits import SafetyLimits, SafetyLimitsError, load_limits
from robot_rl.safety.watchdog import Watchdog

__all__ = [
    "HOLD",
    "ArmCapabilityError",
    "Command",
    "EStop",
    "RobotState",
    "SafeArm",
    "SafeGripper",
    "SafetyChain",
    "SafetyEvent",
    "SafetyLimits",
    "SafetyLimitsError",
    "Watchdog",
    "default_chain",
    "load_limits",
]
