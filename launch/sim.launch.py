"""The ROS 2 graph on the simulated rig: cameras and arm (safety chain and watchdog
inside) from sim_robot_node, and optionally an operator's device.

    ros2 launch robot_rl sim.launch.py [teleop:=true device:=keyboard]

Topics: /<camera>/image_raw and /<camera>/camera_info, /joint_states, /ee_pose, /wrench,
/safety_status, /estop_state (latched); commands on /target_pose or /target_twist, the
e-stop on /estop, its reset through the /reset_estop service (std_srvs/Trigger); the
operator's device on /teleop/twist, /teleop/gripper and /teleop/events.

Arguments: ros2 launch robot_rl sim.launch.py --show-args
"""

from launch import LaunchDescription
from robot_rl.ros.launch_graph import SIM_ARGUMENTS, declare, flag, opaque, sim_robot_node, teleop_node


def nodes(args):
    started = [sim_robot_node({})]
    if flag(args, "teleop") and args["device"] not in ("none", "external"):
        started.append(teleop_node(args["device"]))
    return started


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*declare(SIM_ARGUMENTS), opaque(nodes, SIM_ARGUMENTS)])
