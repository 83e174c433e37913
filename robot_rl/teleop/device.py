"""What every teleop device reports, and the interface it implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class TeleopEvent(StrEnum):
    INTERVENE = "intervene"  # take over from the policy (held or toggled, per device)
    SUCCESS = "success"
    FAILURE = "failure"
    RESET = "reset"
    PAUSE = "pause"
    ESTOP = "estop"


@dataclass(frozen=True)
class TeleopSample:
    """One reading: a twist in [-1, 1]^6 (vx, vy, vz, wx, wy, wz) in the operator's frame,
    a gripper command (+1 close, -1 open, None: no command), and the events since the last
    read (each press reported once)."""

    twist: np.ndarray
    gripper: float | None = None
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)
    stamp: float = 0.0

    def deflected(self, deadzone: float = 0.0) -> bool:
        """True when the operator is moving the device beyond the deadzone."""
        return bool(np.max(np.abs(self.twist)) > deadzone)


class TeleopDevice(ABC):
    @abstractmethod
    def read(self) -> TeleopSample:
        """The device's state now; never blocks."""

    def outcome(self, info: dict) -> frozenset[TeleopEvent]:
        """Labels for the step just taken, from an operator who watches its outcome (the
        simulated one); a person's labels come through :meth:`read` instead."""
        return frozenset()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


class DeviceGroup(TeleopDevice):
    """Several devices as one (a SpaceMouse and the console, say): motion and gripper from
    the first device that has any, events from all."""

    def __init__(self, devices: list[TeleopDevice]):
        if not devices:
            raise ValueError("a device group needs at least one device")
        self.devices = list(devices)

    def read(self) -> TeleopSample:
        samples = [d.read() for d in self.devices]
        moving = next((s for s in samples if s.deflected()), samples[0])
        gripper = next((s.gripper for s in samples if s.gripper is not None), None)
        events = frozenset().union(*(s.events for s in samples))
        return TeleopSample(moving.twist, gripper, events, max(s.stamp for s in samples))

    def outcome(self, info: dict) -> frozenset[TeleopEvent]:
        return frozenset().union(*(d.outcome(info) for d in self.devices))

    def close(self) -> None:
        for device in self.devices:
            device.close()
