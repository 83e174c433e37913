"""The simulated rig: the MuJoCo scene (``simulation``), its drivers and backend behind the
safety chain, the tasks and their scripted expert, the simulated operator, the safety audit,
and the env built from a config (``factory``).

Offscreen rendering defaults to EGL, which works without a display; set MUJOCO_GL
yourself (glfw, osmesa) to choose another backend.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
