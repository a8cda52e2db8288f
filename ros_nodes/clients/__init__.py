"""Python clients of the nodes: WorldModelClient, the "ros" world-model backend, the simulator bridge client."""
