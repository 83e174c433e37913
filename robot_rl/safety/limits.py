"""Per-robot safety limits: one YAML per robot in ``config/safety/``, validated at start-up.

The file is merged into the typed schema below, so an unknown key or a value of the wrong
type fails at once; :func:`validate` then checks what types cannot (lower above upper, a
missing joint, a negative timeout). Every error is one line naming the file and the key.

``contact`` is the one section that may be switched off, and only explicitly: ``contact:
none`` (for an arm that cannot sense force, which the safety chain otherwise refuses to
start on: see :class:`robot_rl.safety.SafeArm`). An empty ``contact:`` is an error, never
a silent "off".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robot_rl.config import ConfigError, config_dir


class SafetyLimitsError(ConfigError):
    """A problem in a safety limits file; its message is one line naming the file and key."""


@dataclass
class BoxLimits:
    low: list[float] = MISSING
    high: list[float] = MISSING


@dataclass
class EELimits:
    max_step: float = MISSING  # m per command, from the current pose
    max_rot_step: float = MISSING  # rad per command (bounds the rotation angle)
    max_speed: float = MISSING  # m/s
    max_rot_speed: float = MISSING  # rad/s
    max_acceleration: float = MISSING  # m/s²
    max_rot_acceleration: float = MISSING  # rad/s²


@dataclass
class JointLimit:
    lower: float = MISSING
    upper: float = MISSING
    max_velocity: float = MISSING


@dataclass
class JointLimits:
    margin: float = MISSING  # rad kept clear of each limit
    limits: dict[str, JointLimit] = field(default_factory=dict)


CONTACT_OFF = "none"  # ``contact: none`` in a limits file: no contact limit (an arm that cannot sense force)


@dataclass
class ContactLimits:
    max_force: float = MISSING  # N
    max_torque: float = MISSING  # N·m
    backoff: float = MISSING  # m to retreat along the contact force


@dataclass
class GripperLimits:
    min_width: float = MISSING
    max_width: float = MISSING
    max_speed: float = MISSING  # m/s of the commanded opening


@dataclass
class WatchdogLimits:
    command_timeout: float = 0.2  # s without a valid command before the arm halts
    observation_timeout: float = 0.3  # s a camera frame or the arm state may age before the arm halts


@dataclass
class SafetyLimits:
    robot: str = MISSING
    workspace: BoxLimits = field(default_factory=BoxLimits)  # end-effector position (m, base frame)
    # commands stay this far inside the workspace box, so that the measured end effector,
    # which lags or overshoots its target by up to this much, never leaves the box
    tracking_margin: float = 0.0
    orientation: BoxLimits = field(default_factory=BoxLimits)  # roll, pitch, yaw (rad)
    # commands stay this far (rad) inside each orientation bound (not one spanning 2π), so that
    # the measured orientation, which overshoots its target by up to this much, stays inside
    rot_tracking_margin: float = 0.0
    ee: EELimits = field(default_factory=EELimits)
    joints: JointLimits = field(default_factory=JointLimits)
    contact: ContactLimits | None = field(default_factory=ContactLimits)  # None: ``contact: none`` in the file
    gripper: GripperLimits = field(default_factory=GripperLimits)
    watchdog: WatchdogLimits = field(default_factory=WatchdogLimits)
    source: str = "limits"  # the file these came from, for error messages (load_limits sets it)

    @property
    def joint_names(self) -> list[str]:
        return list(self.joints.limits)

    def narrowed(self, low: Sequence[float], high: Sequence[float]) -> SafetyLimits:
        """A copy whose workspace is also inside [low, high] (a task's box within the robot's)."""
        new_low = [max(a, b) for a, b in zip(self.workspace.low, low, strict=True)]
        new_high = [min(a, b) for a, b in zip(self.workspace.high, high, strict=True)]
        if any(lo > hi for lo, hi in zip(new_low, new_high, strict=True)):
            raise SafetyLimitsError(f"the workspace box {list(low)}..{list(high)} does not overlap the safety "
                                    f"workspace {self.workspace.low}..{self.workspace.high} of {self.robot!r}")
        copy = OmegaConf.to_object(OmegaConf.structured(self))
        copy.workspace = BoxLimits(new_low, new_high)
        return copy


def limits_path(name: str) -> Path:
    """``name`` as a file: a path to a .yaml, or the name of one in ``config/safety/``."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return config_dir() / "safety" / f"{name}.yaml"


def load_limits(name: str, joint_names: Sequence[str] | None = None) -> SafetyLimits:
    """The validated limits in ``name`` (see :func:`limits_path`); with ``joint_names``, the
    file must list exactly those joints. Raises :class:`SafetyLimitsError`."""
    path = limits_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in (config_dir() / "safety").glob("*.yaml"))
        raise SafetyLimitsError(f"no safety limits file {str(path)!r}; available: {', '.join(known) or 'none'}")
    try:
        raw = OmegaConf.load(path)
    except Exception as e:  # YAML syntax
        raise SafetyLimitsError(f"safety limits {path.name}: {' '.join(str(e).split())}") from None
    _contact_off(raw, path.name)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SafetyLimits), raw)
        limits = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise SafetyLimitsError(f"safety limits {path.name}: '{key}': {str(e.msg).splitlines()[0]}") from None
    except Exception as e:
        raise SafetyLimitsError(f"safety limits {path.name}: {' '.join(str(e).split())}") from None
    limits.source = path.name
    validate(limits, joint_names, path.name)
    return limits


def _contact_off(raw: object, source: str) -> None:
    """``contact: none`` becomes no contact section. An empty ``contact:`` or any other plain
    value is refused: turning the contact limit off must be written out."""
    if not isinstance(raw, DictConfig) or "contact" not in raw:
        return
    value = raw.get("contact")
    if isinstance(value, str) and value.strip().lower() == CONTACT_OFF:
        raw.contact = None
    elif value is None:
        raise SafetyLimitsError(f"safety limits {source}: 'contact' is empty: give max_force, max_torque and "
                                f"backoff, or write 'contact: {CONTACT_OFF}' to run without the contact limit")
    elif not isinstance(value, DictConfig):
        raise SafetyLimitsError(f"safety limits {source}: 'contact' must be the contact limits (max_force, "
                                f"max_torque, backoff) or '{CONTACT_OFF}', got {value!r}")


def validate(limits: SafetyLimits, joint_names: Sequence[str] | None = None, source: str = "limits") -> None:
    """Checks that types alone cannot express; the first problem raises, in one line."""

    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise SafetyLimitsError(f"safety limits {source}: '{key}' {why}")

    for box, size in (("workspace", 3), ("orientation", 3)):
        low, high = getattr(limits, box).low, getattr(limits, box).high
        need(len(low) == size and len(high) == size, box, f"low and high must have {size} values")
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            need(math.isfinite(lo) and math.isfinite(hi), f"{box}.low[{i}]", "and high must be finite numbers")
            need(lo <= hi, f"{box}.low[{i}]", f"is above {box}.high[{i}]: lower {lo} > upper {hi}")
    m = limits.tracking_margin
    need(m >= 0, "tracking_margin", f"must be >= 0, got {m}")
    need(all(hi - lo > 2 * m for lo, hi in zip(limits.workspace.low, limits.workspace.high, strict=True)),
         "tracking_margin", f"{m} leaves nothing of the workspace box inside it")
    o, m = limits.orientation, limits.rot_tracking_margin
    need(m >= 0, "rot_tracking_margin", f"must be >= 0, got {m}")
    need(all(hi - lo > 2 * m for lo, hi in zip(o.low, o.high, strict=True) if hi - lo < 2 * math.pi),
         "rot_tracking_margin", f"{m} leaves nothing of the orientation bounds inside it")
    need(-math.pi / 2 < o.low[1] and o.high[1] < math.pi / 2, "orientation", "pitch bounds must lie inside "
         f"(-π/2, π/2), got {o.low[1]}..{o.high[1]}")
    for key, value in vars(limits.ee).items():
        need(value > 0, f"ee.{key}", f"must be > 0, got {value}")
    j = limits.joints
    need(j.margin >= 0, "joints.margin", f"must be >= 0, got {j.margin}")
    need(len(j.limits) > 0, "joints.limits", "must list the arm's joints")
    for name, joint in j.limits.items():
        need(joint.lower <= joint.upper, f"joints.limits.{name}", f"lower {joint.lower} > upper {joint.upper}")
        need(joint.upper - joint.lower > 2 * j.margin, f"joints.limits.{name}",
             f"range {joint.lower}..{joint.upper} leaves nothing inside the margin {j.margin}")
        need(joint.max_velocity > 0, f"joints.limits.{name}.max_velocity", f"must be > 0, got {joint.max_velocity}")
    if joint_names is not None:
        missing = [n for n in joint_names if n not in j.limits]
        need(not missing, "joints.limits", f"is missing joint {missing[0]!r} (the arm has {list(joint_names)})"
             if missing else "")
        extra = [n for n in j.limits if n not in joint_names]
        need(not extra, "joints.limits", f"has unknown joint {extra[0]!r} (the arm has {list(joint_names)})"
             if extra else "")
        need(list(j.limits) == list(joint_names), "joints.limits", f"must list the joints in the arm's order "
             f"{list(joint_names)}")
    c = limits.contact
    if c is not None:  # None: 'contact: none' in the file, said out loud
        need(c.max_force > 0, "contact.max_force", f"must be > 0, got {c.max_force}")
        need(c.max_torque > 0, "contact.max_torque", f"must be > 0, got {c.max_torque}")
        need(c.backoff >= 0, "contact.backoff", f"must be >= 0, got {c.backoff}")
    g = limits.gripper
    need(0 <= g.min_width <= g.max_width, "gripper.min_width", f"must be in [0, max_width]: lower {g.min_width} > "
         f"upper {g.max_width}" if g.min_width > g.max_width else f"must be >= 0, got {g.min_width}")
    need(g.max_speed > 0, "gripper.max_speed", f"must be > 0, got {g.max_speed}")
    w = limits.watchdog
    need(w.command_timeout > 0, "watchdog.command_timeout", f"must be > 0 s, got {w.command_timeout}")
    need(w.observation_timeout > 0, "watchdog.observation_timeout", f"must be > 0 s, got {w.observation_timeout}")
