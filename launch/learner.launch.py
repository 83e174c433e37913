"""The learner on a workstation GPU: `robot-rl learner` (it needs no ROS; this file is for
labs that start everything with ros2 launch). Actors reach it at address with the same
$ROBOT_RL_TOKEN.

    ROBOT_RL_TOKEN=... ros2 launch robot_rl learner.launch.py robot:=ur5e cameras:=ros

Arguments: ros2 launch robot_rl learner.launch.py --show-args
"""

from launch import LaunchDescription
from robot_rl.ros.launch_graph import LEARNER_ARGUMENTS, declare, learner_process, opaque


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*declare(LEARNER_ARGUMENTS),
                              opaque(lambda args: [learner_process(args)], LEARNER_ARGUMENTS)])
