#!/bin/sh
# A stand-in `vppctl` for make bench: lets examples/vpp-config.py (the reference vhost_tool,
# which drives VPP's CLI) run an ADD and a DEL without a VPP. It answers the commands the
# tool sends with the output shapes recorded on a real VPP 26.06
# (tests/unit/data/vppctl/vpp-26.06-cli.txt), always for the one port the benchmark has at
# a time, and does nothing else but what the plugin checks: in server mode VPP makes the
# socket, so `create` binds one (a `python3 -S` start, ~10 ms: more than VPP takes, so the
# tool backend is if anything measured a little slow). Everything else costs about what
# the real C vppctl's exec does.
case "$*" in
"create vhost-user socket "*" server")
    /usr/bin/python3 -S -I -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$4" \
        || exit 1
    echo "VirtualEthernet0/0/0" ;;
"show hardware-interfaces VirtualEthernet0/0/0")
    cat <<'OUT'
              Name                Idx   Link  Hardware
VirtualEthernet0/0/0               2    down  VirtualEthernet0/0/0
  Link speed: unknown
  RX Queues:
    queue thread         mode      
    0     main (0)       polling   
  Ethernet address 02:fe:76:51:af:24
OUT
    ;;
"set interface state "* | "set interface unnumbered "* | "ip route "* | "set ip neighbor "* | \
    "show ip neighbors" | "delete vhost-user "*)
    ;;
*)
    echo "fake vppctl: no answer for: $*" >&2
    exit 97 ;;
esac
