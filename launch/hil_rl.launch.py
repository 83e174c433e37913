"""Human-in-the-loop RL on a robot PC: the cameras, the arm (safety chain and watchdog next
to it), the operator's device and the actor, which streams to a learner elsewhere.

    ROBOT_RL_TOKEN=... ros2 launch robot_rl hil_rl.launch.py robot:=ur5e cameras:=ros \\
        address:=192.168.1.10 camera_devices:=<serial>,<serial> learner:=gpu-box:50051
    ros2 launch robot_rl hil_rl.launch.py            # the simulated rig, over the same topics

Arguments: ros2 launch robot_rl hil_rl.launch.py --show-args
"""

from launch import LaunchDescription
from robot_rl.ros.launch_graph import ACTOR_ARGUMENTS, ROBOT_ARGUMENTS, actor_node, declare, opaque, robot_nodes


def generate_launch_description() -> LaunchDescription:
    arguments = {**ROBOT_ARGUMENTS, **ACTOR_ARGUMENTS}
    return LaunchDescription([*declare(arguments),
                              opaque(lambda args: [*robot_nodes(args), actor_node(args, "train")], arguments)])
