"""vhostuser-vpp: a CNI plugin that gives DPDK pods vhost-user ports on the node's VPP."""

__version__ = "0.1.0"
