#!/bin/sh
# A node of the test bed, as the entrypoint of a privileged container (docker-init as PID 1 reaps
# what this leaves): containerd (CRI), kube-proxy and the kubelet, as a kind node runs them under
# systemd. Its files are mounted read-only at /testbed. Started by `cargo xtask testbed up node`
# (the API server runs on the host) and by the kind stand-in, `kind create cluster`, which sets
# CONTROL_PLANE=1: etcd and the control plane run in the node, as kubeadm runs them in kind's.
# CGROUP_ROOT: the kubelet's cgroup folder; NODE_LABELS: its --node-labels.
set -eu
log() { echo "node: $*"; }
CGROUP_ROOT=${CGROUP_ROOT:-kind-parity-testbed}
NODE_LABELS=${NODE_LABELS:-ingress-ready=true}

# Mounts made under the kubelet's folders (volumes, projected tokens) reach the containers that
# use them, as kind's entrypoint makes sure of.
mount --make-rshared /
sysctl -qw net.ipv4.ip_forward=1
# Pod -> ClusterIP -> pod on the same bridge goes through iptables only with br_netfilter, which
# this kernel has built in (no module can be loaded here).
sysctl -qw net.bridge.bridge-nf-call-iptables=1 || log "warning: net.bridge.bridge-nf-call-iptables is missing: pods may not reach Services on this node"

# The kubelet's cgroups live under one folder per controller, which `testbed down` (or the
# stand-in's `kind delete cluster`) removes.
for controller in /sys/fs/cgroup/*/; do mkdir -p "${controller}${CGROUP_ROOT}"; done

mkdir -p /etc/containerd /etc/cni/net.d /var/log
cp /testbed/etc/containerd.toml /etc/containerd/config.toml
cp /testbed/etc/10-bridge.conflist /etc/cni/net.d/10-bridge.conflist
containerd >/var/log/containerd.log 2>&1 &
i=0
until ctr version >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 100 ] || { log "containerd did not start:"; tail -20 /var/log/containerd.log; exit 1; }
  sleep 0.2
done
for image in /testbed/images/*.tar /testbed/node-images/*.tar; do
  [ -e "$image" ] || continue
  ctr -n k8s.io images import "$image" >/dev/null
done
log "containerd ready, images: $(ctr -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
NODE_IP=$(hostname -i | cut -d' ' -f1)

if [ "${CONTROL_PLANE:-}" = 1 ]; then
  # The control plane as kubeadm configures kind's, with the stand-in's certificates.
  c=/testbed/etc/certs
  /testbed/etcd/etcd --name "$(hostname)" --data-dir /var/lib/etcd \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$(hostname)=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
    >/var/log/etcd.log 2>&1 &
  /testbed/bin/kube-apiserver --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port=6443 \
    --advertise-address="$NODE_IP" --tls-cert-file=$c/apiserver.crt --tls-private-key-file=$c/apiserver.key \
    --client-ca-file=$c/ca.crt --authorization-mode=Node,RBAC \
    --service-account-key-file=$c/sa.pub --service-account-signing-key-file=$c/sa.key \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="${SERVICE_CIDR:-10.96.0.0/16}" --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --kubelet-client-certificate=$c/admin.crt --kubelet-client-key=$c/admin.key --profiling=false \
    >/var/log/kube-apiserver.log 2>&1 &
  /testbed/bin/kube-controller-manager --kubeconfig=/testbed/etc/kubeconfig --root-ca-file=$c/ca.crt \
    --service-account-private-key-file=$c/sa.key --use-service-account-credentials=false \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 >/var/log/kube-controller-manager.log 2>&1 &
  /testbed/bin/kube-scheduler --kubeconfig=/testbed/etc/kubeconfig --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 >/var/log/kube-scheduler.log 2>&1 &
  log "control plane started (etcd, kube-apiserver on :6443, controller manager, scheduler)"
fi

/testbed/bin/kube-proxy --config=/testbed/etc/kube-proxy.yaml >/var/log/kube-proxy.log 2>&1 &
log "kubelet on $(hostname) at $NODE_IP"
exec /testbed/bin/kubelet --config=/testbed/etc/kubelet.yaml --kubeconfig=/testbed/etc/kubeconfig \
  --hostname-override="$(hostname)" --node-ip="$NODE_IP" \
  --node-labels="$NODE_LABELS"
