"""ament_python package definition for robot_rl.

``drivers/`` and ``calibration/`` are top-level folders installed into the robot_rl
namespace (``robot_rl.drivers``, ``robot_rl.calibration``) through ``package_dir``; launch
files and hydra configs go to ``share/robot_rl`` where ``ros2 launch`` and the CLI find them.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.develop import develop as _develop

PACKAGE = "robot_rl"
HERE = Path(__file__).parent


def tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install ``folder`` under share/robot_rl, keeping sub-folders."""
    entries: dict[str, list[str]] = {}
    for path in sorted((HERE / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(HERE)
            entries.setdefault(f"share/{PACKAGE}/{rel.parent.as_posix()}", []).append(rel.as_posix())
    return sorted(entries.items())


def sub_packages(folder: str) -> list[str]:
    return [f"{PACKAGE}.{folder}"] + [f"{PACKAGE}.{folder}.{p}" for p in find_packages(folder)]


class develop(_develop):
    """``setup.py develop`` that accepts setup.cfg's ament ``script_dir`` on every setuptools.

    setuptools >= 80 turned develop into a wrapper of ``pip install -e`` without that
    option (scripts then go to the environment's bin/); older ones, as colcon uses on
    ROS 2 Jazzy, honour it and put scripts in lib/robot_rl for ``ros2 run``.
    """

    if not any(opt[0] == "script-dir=" for opt in _develop.user_options):
        user_options = [*_develop.user_options, ("script-dir=", None, "where scripts go (ament_python)")]

        def initialize_options(self) -> None:
            super().initialize_options()
            self.script_dir = None


INSTALL = [
    "numpy>=1.26",
    "torch==2.13.0",
    "mujoco>=3.2",
    "gymnasium>=1.0",
    "zarr>=3.0",
    "hydra-core>=1.3",
    "omegaconf>=2.3",
    "opencv-python-headless>=4.8",
    "scipy>=1.11",
    "imageio>=2.31",
    "imageio-ffmpeg>=0.5",
    "tqdm>=4.66",
    "wandb>=0.19",
    "pynput>=1.7",
    "hidapi>=0.14",
    "transformers>=4.40",
    "grpcio>=1.85.1",
    "protobuf>=7.35.1",
    "rosbags>=0.10",
    "pyarrow>=15",  # LeRobotDataset parquet files
    "psutil>=5.9",  # benchmarks: process trees and their memory
]
# pytest < 9: ROS 2 Jazzy's launch_testing 3.4.x registers a pytest plugin whose hook
# signature pytest 9 rejects, and then no pytest run starts wherever it is installed
TEST = ["pytest>=8,<9", "hypothesis>=6.100", "ruff>=0.6", "grpcio-tools==1.85.1", "selenium>=4.20"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Sample-efficient reinforcement learning on real robot arms with a human in the loop",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]) + sub_packages("drivers") + sub_packages("calibration"),
    package_dir={f"{PACKAGE}.drivers": "drivers", f"{PACKAGE}.calibration": "calibration"},
    package_data={f"{PACKAGE}.sim": ["assets/*.xml"], f"{PACKAGE}.transport": ["*.proto"],
                  f"{PACKAGE}.console": ["*.html"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *tree("launch"),
        *tree("config"),
    ],
    install_requires=INSTALL,
    extras_require={"test": TEST, "realsense": ["pyrealsense2>=2.55"], "ur": ["ur-rtde>=1.5"],
                    "xarm": ["xarm-python-sdk>=1.14"]},
    zip_safe=False,
    cmdclass={"develop": develop},
    entry_points={"console_scripts": [
        "robot-rl = robot_rl.cli:main",
        # ROS 2 nodes: `ros2 run robot_rl <name>` (setup.cfg puts them in lib/robot_rl)
        "sim_robot_node = robot_rl.ros.nodes:sim_robot_main",
        "teleop_node = robot_rl.ros.nodes:teleop_main",
        "camera_node = robot_rl.ros.nodes:camera_main",
        "arm_node = robot_rl.ros.nodes:arm_main",
        "actor_node = robot_rl.ros.nodes:actor_main",
    ]},
)
