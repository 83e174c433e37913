# The robot PC: ROS 2 Jazzy, robot_rl built with colcon, the drivers' system dependencies.
#
#   docker compose -f docker/compose.yaml build robot
#   docker compose -f docker/compose.yaml run --rm test-ros      # launch_testing suite in tests/ros
#
# Hardware: run with --network host (DDS discovery with the arm and the operator's machine)
# and --device for the cameras (/dev/bus/usb for RealSense, /dev/video* for UVC) and the
# SpaceMouse (/dev/hidraw*).
#
# It runs as the unprivileged user `robot` (UID 1001, in the groups video, plugdev and
# dialout); a device node whose group is another one needs --group-add <that gid>
# (e.g. --group-add $(stat -c %g /dev/hidraw0)). It writes only to /runs (the run
# folders), its home (~/.ros logs, caches) and the source tree /ws/src/robot_rl.
FROM ros:jazzy-ros-base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_NO_CACHE_DIR=1 \
    MUJOCO_GL=egl \
    PYNPUT_BACKEND=dummy

# colcon and rosdep; launch_testing and rosbag2 for tests/ros and record.launch.py bag:=true;
# EGL (MuJoCo offscreen for sim_robot_node), libusb (RealSense), hidapi (SpaceMouse)
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-pip python3-colcon-common-extensions python3-rosdep \
        ros-jazzy-launch-testing ros-jazzy-launch-testing-ros ros-jazzy-rosbag2 \
        ros-jazzy-rosbag2-storage-default-plugins \
        libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libusb-1.0-0 libhidapi-hidraw0 \
    && rm -rf /var/lib/apt/lists/*

# Ubuntu 24.04's Python refuses pip installs (externally managed): robot_rl's PyPI
# dependencies go into a venv that also sees the apt-installed ROS packages (rclpy, launch),
# as in the README's "On a ROS 2 robot"; COLCON_IGNORE keeps colcon out of it
RUN python3 -m venv --system-site-packages /opt/venv && touch /opt/venv/COLCON_IGNORE
ENV PATH=/opt/venv/bin:$PATH
ARG UID=1001
RUN groupadd -f plugdev \
    && useradd --create-home --uid "$UID" --user-group --groups video,plugdev,dialout --shell /bin/bash robot \
    && mkdir -p /runs /ws/src/robot_rl && chown robot:robot /runs /ws/src/robot_rl
WORKDIR /ws/src/robot_rl
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY --chown=robot:robot . .
# robot_rl's Python dependencies, the drivers' SDKs and the test tools from PyPI; robot_rl
# itself is then installed by colcon (ament_python: launch files, configs, ros2 run entries),
# run by the venv's Python so that its executables start with it
RUN pip install ".[test,realsense,ur,xarm]" && pip uninstall -y robot_rl
WORKDIR /ws
RUN source /opt/ros/jazzy/setup.bash \
    && python -m colcon build --packages-select robot_rl --event-handlers console_direct+

COPY docker/ros_entrypoint.sh /ros_entrypoint.sh
ENTRYPOINT ["/ros_entrypoint.sh"]
WORKDIR /ws/src/robot_rl
USER robot
CMD ["ros2", "launch", "robot_rl", "sim.launch.py"]
