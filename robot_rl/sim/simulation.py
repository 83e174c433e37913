"""The MuJoCo world behind the simulated robot: physics, the arm's Cartesian controller,
the gripper, the task objects and offscreen rendering.

The arm is position-servoed in joint space (with gravity compensation, as a torque-
controlled arm under an impedance controller behaves); a Cartesian end-effector target is
turned into joint targets by damped-least-squares differential IK with a null-space pull
towards the home posture. One IK solve per control step keeps the control step cheap; the
servos then track the target for the rest of the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import mujoco
import numpy as np

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
GRIPPER_MAX_WIDTH = 0.08  # metres between the finger pads, fully open
CUBE_HALF_SIZE = 0.02
# Panda "ready" posture: gripper pointing down, elbow up. The IK pulls towards it.
READY_Q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


@dataclass(frozen=True)
class Pose:
    """A position (m) and a unit quaternion (w, x, y, z) in the robot base frame."""

    pos: np.ndarray
    quat: np.ndarray

    def as_array(self) -> np.ndarray:
        return np.concatenate([self.pos, self.quat])


def scene_path() -> str:
    return str(resources.files("robot_rl.sim").joinpath("assets/scene.xml"))


class ArmSimulation:
    """One simulated rig. Drivers and tasks share it; nothing here knows about RL."""

    def __init__(self, physics_dt: float = 0.002, ik_damping: float = 0.05, nullspace_gain: float = 0.5,
                 xml: str | None = None):
        """``xml``: a variant of the scene (e.g. with a calibration board on the table); default: scene.xml."""
        if physics_dt <= 0:
            raise ValueError(f"physics_dt must be > 0, got {physics_dt}")
        self.model = mujoco.MjModel.from_xml_string(xml) if xml else mujoco.MjModel.from_xml_path(scene_path())
        self.model.opt.timestep = physics_dt
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)  # for IK solves that must not touch the world
        self.ik_damping = ik_damping
        self.nullspace_gain = nullspace_gain

        m = self.model
        self.arm_qpos = np.array([m.joint(j).qposadr[0] for j in ARM_JOINTS])
        self.arm_dof = np.array([m.joint(j).dofadr[0] for j in ARM_JOINTS])
        self.arm_ctrl = np.array([m.actuator(j).id for j in ARM_JOINTS])
        self.joint_low = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 0].copy()
        self.joint_high = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 1].copy()
        self.finger_qpos = np.array([m.joint("finger_left").qposadr[0], m.joint("finger_right").qposadr[0]])
        self.finger_dof = np.array([m.joint("finger_left").dofadr[0], m.joint("finger_right").dofadr[0]])
        self.gripper_ctrl = m.actuator("gripper").id
        self.ee_site = m.site("ee").id
        self.cube_qpos = m.joint("cube_joint").qposadr[0]
        self.cube_dof = m.joint("cube_joint").dofadr[0]
        self.cube_body = m.body("cube").id
        self.target_mocap = m.body("target").mocapid[0]
        self.table_geom = m.geom("table").id
        gripper_bodies = {m.body(b).id for b in ("hand", "left_finger", "right_finger")}
        self.gripper_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] in gripper_bodies}
        self._is_gripper_geom = np.isin(np.arange(m.ngeom), sorted(self.gripper_geoms))
        self.finger_geoms = (m.geom("left_pad").id, m.geom("right_pad").id)
        self.cube_geom = m.geom("cube_geom").id
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self.target_geom = m.geom("target_geom").id
        self._scene_cameras = {m.camera(i).name: (m.cam_pos[i].copy(), m.cam_quat[i].copy()) for i in range(m.ncam)}
        self.target_ball = m.geom("target_ball").id
        self.home_q = READY_Q.copy()
        self.home_quat = self._fk(READY_Q).quat
        self.ee_home = self._fk(READY_Q)

    # ---------------------------------------------------------------- state
    @property
    def time(self) -> float:
        return float(self.data.time)

    def ee_pose(self) -> Pose:
        return self._site_pose(self.data)

    def _site_pose(self, data: mujoco.MjData) -> Pose:
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, data.site_xmat[self.ee_site])
        return Pose(data.site_xpos[self.ee_site].copy(), quat)

    def arm_q(self) -> np.ndarray:
        return self.data.qpos[self.arm_qpos].copy()

    def arm_dq(self) -> np.ndarray:
        return self.data.qvel[self.arm_dof].copy()

    def gripper_width(self) -> float:
        return float(self.data.qpos[self.finger_qpos].sum())

    def cube_pos(self) -> np.ndarray:
        return self.data.qpos[self.cube_qpos : self.cube_qpos + 3].copy()

    def target_pos(self) -> np.ndarray:
        return self.data.mocap_pos[self.target_mocap].copy()

    def fingers_touch_cube(self) -> bool:
        """True when both finger pads are in contact with the cube (a grasp)."""
        if self.data.ncon == 0:
            return False
        geoms = self.data.contact.geom  # (ncon, 2)
        with_cube = geoms[(geoms == self.cube_geom).any(axis=1)]
        return all((with_cube == pad).any() for pad in self.finger_geoms)

    def contact_wrench(self) -> np.ndarray:
        """Force (N) and torque (N·m, about the TCP) that contacts exert on the gripper, base frame."""
        wrench = np.zeros(6)
        if self.data.ncon == 0:
            return wrench
        contacts = self.data.contact
        on = self._is_gripper_geom[contacts.geom]  # (ncon, 2); looked up in bulk, not contact by contact
        local = np.zeros(6)
        tcp = self.data.site_xpos[self.ee_site]
        for i in np.flatnonzero(on[:, 0] != on[:, 1]):
            mujoco.mj_contactForce(self.model, self.data, i, local)
            frame = contacts.frame[i].reshape(3, 3)  # rows: contact normal and tangents, world frame
            # mj_contactForce gives the force geom1 exerts on geom2, in the contact frame.
            force = frame.T @ local[:3]
            if on[i, 0]:
                force = -force
            wrench[:3] += force
            wrench[3:] += np.cross(contacts.pos[i] - tcp, force)
        return wrench

    # ---------------------------------------------------------------- commands
    def command_ee(self, target: Pose) -> None:
        """Set joint servo targets that move the end effector towards ``target``."""
        q = self.arm_q()
        self.data.ctrl[self.arm_ctrl] = self._ik_step(self.data, q, target)

    def command_joints(self, q: np.ndarray) -> None:
        self.data.ctrl[self.arm_ctrl] = np.clip(q, self.joint_low, self.joint_high)

    def hold(self) -> None:
        """Servo the arm to where it is now."""
        self.command_joints(self.arm_q())

    def command_gripper(self, width: float) -> None:
        self.data.ctrl[self.gripper_ctrl] = np.clip(width, 0.0, GRIPPER_MAX_WIDTH) / 2

    def advance(self, duration: float) -> None:
        nstep = max(1, round(duration / self.model.opt.timestep))
        mujoco.mj_step(self.model, self.data, nstep=nstep)

    # ---------------------------------------------------------------- reset
    def set_home(self, pos: np.ndarray) -> None:
        """Make the gripper-down pose at ``pos`` the home pose episodes start around."""
        self.home_q = self.solve_ik(Pose(np.asarray(pos, dtype=float), self.home_quat), READY_Q)
        self.ee_home = Pose(np.asarray(pos, dtype=float), self.home_quat.copy())

    def reset(self, q: np.ndarray, gripper_width: float) -> None:
        """Restart physics with the arm at ``q`` and everything at rest."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self.arm_qpos] = q
        self.data.qpos[self.finger_qpos] = gripper_width / 2
        self.command_joints(q)
        self.command_gripper(gripper_width)
        mujoco.mj_forward(self.model, self.data)

    def place_cube(self, pos: np.ndarray, yaw: float) -> None:
        c = self.cube_qpos
        self.data.qpos[c : c + 3] = pos
        self.data.qpos[c + 3 : c + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        self.data.qvel[self.cube_dof : self.cube_dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def place_target(self, pos: np.ndarray, shape: str | None = "disc") -> None:
        """Move the target marker; ``shape`` is "disc" (on the table), "ball" (in the air) or None (hidden)."""
        if shape not in ("disc", "ball", None):
            raise ValueError(f"target shape must be 'disc', 'ball' or None, got {shape!r}")
        self.data.mocap_pos[self.target_mocap] = pos
        self.model.geom_rgba[self.target_geom, 3] = 0.9 if shape == "disc" else 0.0
        self.model.geom_rgba[self.target_ball, 3] = 0.9 if shape == "ball" else 0.0
        mujoco.mj_forward(self.model, self.data)

    def solve_ik(self, target: Pose, q0: np.ndarray | None = None, iters: int = 100, tol: float = 1e-4) -> np.ndarray:
        """Joint angles that put the end effector at ``target`` (iterated differential IK)."""
        d = self._scratch
        q = (self.home_q if q0 is None else q0).copy()
        for _ in range(iters):
            d.qpos[self.arm_qpos] = q
            mujoco.mj_kinematics(self.model, d)
            mujoco.mj_comPos(self.model, d)
            pose = self._site_pose(d)
            if np.linalg.norm(target.pos - pose.pos) < tol and _quat_angle(target.quat, pose.quat) < 1e-3:
                return q
            q = self._ik_step(d, q, target)
        raise RuntimeError(f"IK did not converge for target position {np.round(target.pos, 3).tolist()}")

    def _ik_step(self, data: mujoco.MjData, q: np.ndarray, target: Pose) -> np.ndarray:
        pose = self._site_pose(data)
        err = np.empty(6)
        err[:3] = target.pos - pose.pos
        rot = np.empty(3)
        mujoco.mju_subQuat(rot, target.quat, pose.quat)  # in the current EE frame
        err[3:] = data.site_xmat[self.ee_site].reshape(3, 3) @ rot
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self.ee_site)
        jac = np.vstack([self._jacp[:, self.arm_dof], self._jacr[:, self.arm_dof]])
        jjt = jac @ jac.T + self.ik_damping**2 * np.eye(6)
        dq = jac.T @ np.linalg.solve(jjt, err)
        pinv = jac.T @ np.linalg.inv(jac @ jac.T + 1e-6 * np.eye(6))
        dq += (np.eye(7) - pinv @ jac) @ (self.nullspace_gain * (self.home_q - q))
        return np.clip(q + dq, self.joint_low, self.joint_high)

    def _fk(self, q: np.ndarray) -> Pose:
        d = self._scratch
        d.qpos[self.arm_qpos] = q
        mujoco.mj_kinematics(self.model, d)
        return self._site_pose(d)

    # ---------------------------------------------------------------- rendering
    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        """An RGB uint8 image from a named camera, rendered offscreen."""
        renderer = self._renderers.get((height, width))
        if renderer is None:
            vis = self.model.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
            renderer = self._renderers[(height, width)] = mujoco.Renderer(self.model, height, width)
        renderer.update_scene(self.data, camera=camera)
        return renderer.render()

    def move_camera(self, camera: str, shift: Sequence[float] = (0.0, 0.0, 0.0),
                    turn: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        """Put ``camera`` where the scene has it, shifted by ``shift`` (m, in the frame of the body
        it is fixed to: the world for ``front``, the hand for ``wrist``) and turned by ``turn``
        (pan, tilt, roll in degrees: left about its up axis, up about its right axis, then about
        its viewing axis). Offsets are from the scene's pose, so moving twice does not add up."""
        if camera not in self._scene_cameras:
            raise ValueError(f"the simulated rig has no camera {camera!r}; it has {self.camera_names()}")
        shift, turn = np.asarray(shift, dtype=float), np.asarray(turn, dtype=float)
        if shift.shape != (3,) or turn.shape != (3,) or not np.all(np.isfinite([*shift, *turn])):
            raise ValueError(f"camera {camera!r}: shift and turn must be 3 finite numbers each, got {shift}, {turn}")
        pos, quat = self._scene_cameras[camera]
        for axis, degrees in zip(([0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]), turn, strict=True):
            step, turned = np.empty(4), np.empty(4)
            mujoco.mju_axisAngle2Quat(step, np.array(axis), np.radians(degrees))
            mujoco.mju_mulQuat(turned, quat, step)  # about the camera's own (already turned) axes
            quat = turned
        cam = self.model.camera(camera).id
        self.model.cam_pos[cam], self.model.cam_quat[cam] = pos + shift, quat
        mujoco.mj_forward(self.model, self.data)

    def set_cube_rgba(self, rgba: Sequence[float]) -> None:
        """Paint the cube: ``rgba`` four numbers in [0, 1], alpha > 0 (a cube no camera sees is no task)."""
        rgba = np.asarray(rgba, dtype=float)
        if rgba.shape != (4,) or not np.all((rgba >= 0) & (rgba <= 1)) or rgba[3] <= 0:
            raise ValueError(f"cube rgba must be [r, g, b, a], each in [0, 1] and a > 0, got {rgba.tolist()}")
        self.model.geom_rgba[self.cube_geom] = rgba

    def camera_fovy(self, camera: str) -> float:
        return float(self.model.cam_fovy[self.model.camera(camera).id])

    def camera_names(self) -> list[str]:
        return [self.model.camera(i).name for i in range(self.model.ncam)]

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def _quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.arccos(np.clip(abs(np.dot(a, b)), 0.0, 1.0)))
