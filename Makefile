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

.PHONY: run test test-ros lint setup system-deps benchmarks clean

run: setup  ## set up, then train reach from pixels on the simulated arm (~15 min on 2 CPU cores; eval success 85 % at 3000 steps)
	$(BIN)/robot-rl train task=reach train.env_steps=3000 train.eval_every=1000 train.eval_episodes=20

test: setup  ## set up, then lint and run the test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Not part of `make test`: ROS 2 Jazzy's rclpy wheels from PyPI into .venv, then the nodes on
# real rclpy and Fast DDS (tests/ros/test_nodes_rclpy.py; the launch_testing suite needs the
# robot image: docker compose -f docker/compose.yaml run --rm test-ros).
ROS_WHEELS := "ros-jazzy-rclpy[fastrtps]" ros-jazzy-std-msgs ros-jazzy-sensor-msgs ros-jazzy-geometry-msgs \
	ros-jazzy-std-srvs ros-jazzy-rcl-interfaces

test-ros: setup  ## set up, add ROS 2's rclpy from PyPI, then run tests/ros on real rclpy
	$(BIN)/pip install --quiet $(ROS_WHEELS)
	$(BIN)/python -m pytest -p no:cacheprovider -ra tests/ros

lint: setup
	$(BIN)/ruff check .

benchmarks: setup
	$(BIN)/python benchmarks/sim_speed.py

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
	rm -rf $(VENV) build *.egg-info runs
