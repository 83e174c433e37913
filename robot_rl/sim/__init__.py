"""The simulated rig: MuJoCo scene, tasks and scripted expert.

Offscreen rendering defaults to EGL, which works without a display; set MUJOCO_GL
yourself (glfw, osmesa) to choose another backend.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
