"""ROS 2 adapters: thin rclpy nodes, the ROS-free bridges between topics and our types,
the topic backend and launch helpers. The message conversions themselves live in
``robot_rl.messages`` (ROS-free, shared with the bag tools). Nothing outside this package
imports ROS (docs/architecture.md, the layers table)."""
