"""The ROS 2 graph on the simulated rig: cameras and arm (safety chain and watchdog
inside) from sim_robot_node, and optionally an operator's device.

    ros2 launch robot_rl sim.launch.py [teleop:=true device:=spacemouse]

Topics: /<camera>/image_raw and /<camera>/camera_info, /joint_states, /ee_pose, /wrench,
/safety_status, /estop_state (latched); commands on /target_pose or /target_twist, the
e-stop on /estop, its reset through the /reset_estop service (std_srvs/Trigger); the
operator's device on /teleop/twist, /teleop/gripper and /teleop/events.
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    params = PathJoinSubstitution([FindPackageShare("robot_rl"), "config", "ros"])
    return LaunchDescription([
        DeclareLaunchArgument("teleop", default_value="false", description="also start teleop_node"),
        DeclareLaunchArgument("device", default_value="spacemouse", description="keyboard | spacemouse | gamepad"),
        Node(package="robot_rl", executable="sim_robot_node", name="sim_robot", output="screen",
             parameters=[PathJoinSubstitution([params, "sim_robot.yaml"])]),
        Node(package="robot_rl", executable="teleop_node", name="teleop", namespace="teleop", output="screen",
             parameters=[PathJoinSubstitution([params, "teleop.yaml"]), {"device": LaunchConfiguration("device")}],
             condition=IfCondition(LaunchConfiguration("teleop"))),
    ])
