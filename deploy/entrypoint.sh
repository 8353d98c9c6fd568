#!/bin/sh
# Entrypoint of the installer DaemonSet (see daemonset.yaml and Containerfile):
#  1. copies this image's runtime prefix to the same path on the host, atomically
#     (a temporary directory renamed into place), unless that version is already there;
#  2. installs the `vhostuser` launcher into the host's CNI bin dir, get-prefix.sh into
#     cniDir and, when missing, the default node policy;
#  3. waits until the pod is terminated.
# Every path comes from the environment that daemonset.yaml sets.
set -eu

: "${PREFIX:?PREFIX is set by the image}"
: "${HOST_RUNTIME_DIR:=/host/opt/vhostuser-vpp}"
: "${CNI_BIN_DIR:=/host/opt/cni/bin}"
: "${CNI_DIR:=/var/lib/cni/vhostuser}"
: "${NODE_CONFIG:=/host/etc/cni/vhostuser-vpp.json}"

version=$(basename "$PREFIX")
target="$HOST_RUNTIME_DIR/$version"
if [ ! -d "$target" ]; then
    tmp="$HOST_RUNTIME_DIR/.$version.$$.tmp"
    rm -rf "$tmp"
    cp -a "$PREFIX" "$tmp"
    sync
    # A concurrent or earlier copy may have won: keep it, drop ours.
    mv -T "$tmp" "$target" 2>/dev/null || rm -rf "$tmp"
    echo "runtime copied to the host: ${target#/host}"
fi

# The launcher names this image's interpreter path, which the copy above made valid
# on the host as well.
vhostuser-vpp install --cni-bin-dir "$CNI_BIN_DIR" --cni-dir "$CNI_DIR" --node-config "$NODE_CONFIG"

# As PID 1 a shell gets no default signal handling: without the trap, SIGTERM would be
# ignored and every pod deletion would wait for the grace period and SIGKILL.
sleep infinity &
sleeper=$!
trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM INT
wait "$sleeper"
