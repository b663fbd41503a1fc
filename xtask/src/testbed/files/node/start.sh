#!/bin/sh
# The test bed's node, started by `cargo xtask testbed up node` as the entrypoint of a privileged
# container (docker-init as PID 1 reaps what this leaves): containerd (CRI), kube-proxy and the
# kubelet, as a kind node runs them under systemd. Its files are mounted read-only at /testbed.
set -eu
log() { echo "node: $*"; }

# Mounts made under the kubelet's folders (volumes, projected tokens) reach the containers that
# use them, as kind's entrypoint makes sure of.
mount --make-rshared /
sysctl -qw net.ipv4.ip_forward=1
# Pod -> ClusterIP -> pod on the same bridge goes through iptables only with br_netfilter, which
# this kernel has built in (no module can be loaded here).
sysctl -qw net.bridge.bridge-nf-call-iptables=1 || log "warning: net.bridge.bridge-nf-call-iptables is missing: pods may not reach Services on this node"

# The kubelet's cgroups live under one folder per controller, which `testbed down` removes.
for controller in /sys/fs/cgroup/*/; do mkdir -p "${controller}kind-parity-testbed"; done

mkdir -p /etc/containerd /etc/cni/net.d /var/log
cp /testbed/etc/containerd.toml /etc/containerd/config.toml
cp /testbed/etc/10-bridge.conflist /etc/cni/net.d/10-bridge.conflist
containerd >/var/log/containerd.log 2>&1 &
i=0
until ctr version >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 100 ] || { log "containerd did not start:"; tail -20 /var/log/containerd.log; exit 1; }
  sleep 0.2
done
for image in /testbed/images/*.tar; do
  ctr -n k8s.io images import "$image" >/dev/null
done
log "containerd ready, images: $(ctr -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

/testbed/bin/kube-proxy --config=/testbed/etc/kube-proxy.yaml >/var/log/kube-proxy.log 2>&1 &
NODE_IP=$(hostname -i | cut -d' ' -f1)
log "kubelet on $(hostname) at $NODE_IP"
exec /testbed/bin/kubelet --config=/testbed/etc/kubelet.yaml --kubeconfig=/testbed/etc/kubeconfig \
  --hostname-override="$(hostname)" --node-ip="$NODE_IP" \
  --node-labels=ingress-ready=true
