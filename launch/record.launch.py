"""Record teleoperated demonstrations on a robot PC: the robot's nodes, the operator's
device and actor_node in record mode (an EpisodeStore with labels), and optionally every
topic in a rosbag2 bag with the standard tools.

    ros2 launch robot_rl record.launch.py robot:=ur5e cameras:=ros config:='episodes=20' bag:=true

Arguments: ros2 launch robot_rl record.launch.py --show-args
"""

import time

from launch.actions import ExecuteProcess

from launch import LaunchDescription
from robot_rl.ros.launch_graph import ACTOR_ARGUMENTS, ROBOT_ARGUMENTS, actor_node, declare, flag, opaque, robot_nodes

ARGUMENTS = {**ROBOT_ARGUMENTS, **ACTOR_ARGUMENTS,
             "bag": ("false", "also record every topic with `ros2 bag record -a` into <run_dir>/bag_<date_time>: "
                              "true | false")}


def nodes(args):
    started = [*robot_nodes(args), actor_node(args, "record")]
    if flag(args, "bag"):
        # rosbag2 refuses an output folder that exists: one per session
        bag = f"{args['run_dir']}/bag_{time.strftime('%Y%m%d_%H%M%S')}"
        started.append(ExecuteProcess(cmd=["ros2", "bag", "record", "-a", "-o", bag], output="screen"))
    return started


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*declare(ARGUMENTS), opaque(nodes, ARGUMENTS)])
