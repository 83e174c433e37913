#!/bin/bash
# ROS 2 and the robot_rl workspace in the environment, then the command.
set -e
source /opt/ros/jazzy/setup.bash
source /ws/install/setup.bash
exec "$@"
