"""The ROS 2 servers: spatial reasoning, imagination, the simulator bridge, and the runtime that spins them."""
