# The two commands of the README. Both create or reuse .venv and install what they need,
# Debian packages included (when missing; sudo is used when not root).
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.robot_rl-installed
# Offscreen MuJoCo rendering (EGL/Mesa), pyrealsense2 (libusb), keyboard-teleop tests (Xvfb),
# operator-console tests (headless Chromium).
SYSTEM_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libusb-1.0-0 xvfb chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export MUJOCO_GL ?= egl
export PYNPUT_BACKEND ?= dummy

.PHONY: run test test-ros lint setup system-deps benchmarks bench-gpu clean

run: setup  ## set up, then train reach from pixels on the simulated arm (~15 min on 2 CPU cores; eval success 85 % at 3000 steps)
	$(BIN)/robot-rl train task=reach train.env_steps=3000 train.eval_every=1000 train.eval_episodes=20

test: setup  ## set up, then lint and run the test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# ROS 2 Jazzy for real: the PyPI rclpy and message wheels, the launch toolchain's wheels from
# ../shared/ros2-jazzy (no PyPI package; never `pip install launch`, an unrelated project),
# a colcon build of this package as on a robot, then tests/ros under that install's
# environment (robot_rl imported from install/, nodes started by `ros2 launch`).
ROS_WHEELS_DIR ?= ../shared/ros2-jazzy
ROS_VENV := .venv-ros
ROS_WS := build/ros_ws
ROS_STAMP := $(ROS_VENV)/.ros-installed
ROS_WHEELS := "ros-jazzy-rclpy[fastrtps]" ros-jazzy-std-msgs ros-jazzy-sensor-msgs ros-jazzy-geometry-msgs \
	ros-jazzy-std-srvs ros-jazzy-rcl-interfaces ros-jazzy-ament-index-python ros-jazzy-ament-package \
	colcon-common-extensions catkin_pkg lark pyyaml psutil packaging importlib-metadata argcomplete

test-ros: system-deps $(ROS_STAMP)  ## colcon build, then tests/ros through real ros2 launch and launch_testing
	rm -rf $(ROS_WS) && mkdir -p $(ROS_WS)/src && ln -s $(CURDIR) $(ROS_WS)/src/robot_rl
	cd $(ROS_WS) && PATH=$(CURDIR)/$(ROS_VENV)/bin:$$PATH colcon --log-base log build --packages-select robot_rl \
	  --event-handlers console_cohesion- status- summary+
	export PATH=$(CURDIR)/$(ROS_VENV)/bin:$$PATH && . $(ROS_WS)/install/setup.bash && \
	  cd tests/ros && ROBOT_RL_ROS_TESTS=required python -P -m pytest

$(ROS_STAMP): setup.py pyproject.toml
	@[ -d $(ROS_WHEELS_DIR) ] || { echo "make test-ros: no $(ROS_WHEELS_DIR) (ROS 2 Jazzy's launch wheels)"; exit 1; }
	[ -x $(ROS_VENV)/bin/python ] || $(PYTHON) -m venv $(ROS_VENV)
	$(ROS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ROS_VENV)/bin/python -m pip install --quiet torch==2.13.0 $(ROS_WHEELS)
	$(ROS_VENV)/bin/python -m pip install --quiet --no-deps $(ROS_WHEELS_DIR)/*.whl
	# robot_rl's own dependencies (the package itself comes from the colcon build)
	$(ROS_VENV)/bin/python -m pip install --quiet '.[test]' && $(ROS_VENV)/bin/python -m pip uninstall --quiet -y robot_rl
	touch $@

lint: setup
	$(BIN)/ruff check .

benchmarks: setup  ## every benchmark's quick form, written to docs/benchmarks.md with the published full runs (~20 min)
	$(BIN)/python benchmarks/make_docs.py

bench-gpu: setup  ## on a CUDA machine: the learner and a short pick_cube run on the GPU, into docs/benchmarks.md (< 8 min)
	$(BIN)/python benchmarks/bench_gpu.py
	$(BIN)/python benchmarks/make_docs.py --only

setup: system-deps $(STAMP)

system-deps:
	@if ! command -v dpkg-query >/dev/null; then \
	  echo "note: not a Debian/Ubuntu system; install EGL (Mesa) and libusb-1.0 yourself"; exit 0; fi; \
	missing=$$(for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): setup.py pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "robot_rl needs Python >= 3.11 (found $(PYTHON))"; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) $(ROS_VENV) build *.egg-info runs
