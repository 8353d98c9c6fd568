"""The operator CLI, `vhostuser-vpp`."""
