"""ROS 2 adapters: message conversions (ROS-free, tested against the real message
definitions that rosbags ships) and thin rclpy nodes. Nothing outside this package
imports ROS (DESIGN.md, "ROS 2 without ROS on the build machines")."""
