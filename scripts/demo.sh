#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: podfence on a one-node local cluster, in one command.
#
# Installs what it needs (scripts/deps.sh), builds into build/, starts
# podfenced on its directory source (no API server), wires three pods of
# namespace "production" (frontend, backend, database) with the real CNI
# plugin, shows the live connectivity matrix (podfencectl matrix: observed
# beside expected), simulates the article's two policies offline
# (default-deny-all, allow-frontend-to-backend on TCP 8080: manifests/examples/)
# and applies them as written: frontend still cannot reach backend, and
# explain says why (its egress is isolated by default-deny-all). Then the
# policy that completes them (frontend's egress), and the matrix again.
# Everything is torn down at the end,
# also on Ctrl-C. Everything lives in network namespaces named pfdemo-<pid>-*;
# the host's own network is never touched.
#
#   scripts/demo.sh            (as root, Debian 12)
#   PODFENCE_DEMO_KEEP=1 ...   leave the cluster running until Enter is pressed
#   PODFENCE_BUILD_DIR=DIR ... build somewhere else than build/
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (it creates network namespaces and nftables tables)" >&2
	exit 1
fi

if [ -t 1 ]; then
	B=$'\e[1m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' R='' D='' N=''
fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
die() {
	printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2
	exit 1
}

# ---------------------------------------------------------------- state + teardown
id=pfdemo-$$
run=$(mktemp -d /tmp/podfence-demo.XXXXXX)
node=$id-node
pods=(frontend backend database)
ports=(tcp/8080 tcp/5432 udp/8125)
declare -A ip=() cid=()
pids=()
made_ns=()

teardown() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ ${#made_ns[@]} -gt 0 ] && step "tearing down"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	# CNI DEL as the runtime would, while the controller still answers.
	for pod in "${pods[@]}"; do
		[ -n "${cid[$pod]:-}" ] && cni DEL "$pod" >/dev/null 2>&1
	done
	[ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [ "$rc" -ne 0 ] && [ -s "$run/podfenced.log" ]; then
		echo "--- podfenced log (tail)"
		tail -n 30 "$run/podfenced.log"
	fi
	rm -rf "$run"
	[ ${#made_ns[@]} -gt 0 ] && echo "removed namespaces, processes and $run"
	exit "$rc"
}
trap teardown EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- 1. deps + build
step "1/8 dependencies (scripts/deps.sh)"
scripts/deps.sh
echo "all present"
# Debian's interpreter: a user-level shim (pyenv) can take seconds per start.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

bdir=${PODFENCE_BUILD_DIR:-$top/build}
step "2/8 building into ${bdir#"$top"/}/"
cmake -S "$top" -B "$bdir" >"$run/build.log" 2>&1 || { cat "$run/build.log"; die "cmake failed"; }
cmake --build "$bdir" -j "$(nproc)" --target podfence podfenced podfencectl pfagent \
	>>"$run/build.log" 2>&1 || { tail -n 40 "$run/build.log"; die "build failed"; }
find_bin() { find "$bdir" -type f -name "$1" -perm -u+x -not -path "*/CMakeFiles/*" | head -n 1; }
PODFENCE=$(find_bin podfence) PODFENCED=$(find_bin podfenced)
PODFENCECTL=$(find_bin podfencectl) PFAGENT=$(find_bin pfagent)
for b in PODFENCE PODFENCED PODFENCECTL PFAGENT; do
	[ -n "${!b}" ] || die "build/ has no ${b,,}"
done
echo "podfence, podfenced, podfencectl, pfagent built"

# ---------------------------------------------------------------- 2. the node
step "3/8 a one-node cluster: podfenced on the directory source"
mkdir -p "$run/manifests" "$run/state" "$run/ipam" "$run/cni-bin"
ln -s "$PODFENCE" "$run/cni-bin/podfence"
sock=$run/podfence.sock
ip netns add "$node"
made_ns+=("$node")
ip -n "$node" link set lo up
ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1

cat >"$run/manifests/00-namespace.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: production
  labels: {kubernetes.io/metadata.name: production}
EOF
for pod in "${pods[@]}"; do
	cat >"$run/manifests/10-pod-$pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  namespace: production
  labels: {app: $pod}
spec:
  nodeName: demo-node
  containers:
  - name: $pod
    image: pfagent
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
    - {name: postgres, containerPort: 5432, protocol: TCP}
    - {name: statsd, containerPort: 8125, protocol: UDP}
EOF
done

ip netns exec "$node" "$PODFENCED" --manifests "$run/manifests" --node-name demo-node \
	--socket "$sock" --state-dir "$run/state" --metrics-address 127.0.0.1:9477 \
	>"$run/podfenced.log" 2>&1 &
daemon_pid=$!
ctl() { ip netns exec "$node" "$PODFENCECTL" --socket "$sock" "$@"; }
for _ in $(seq 100); do
	ctl status >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || die "podfenced exited"
	sleep 0.1
done
ctl status >/dev/null 2>&1 || die "podfenced did not answer on $sock"
echo "podfenced is up in namespace $node, watching $run/manifests"

# ---------------------------------------------------------------- 3. pods
cni() { # cni ADD|DEL POD
	local cmd=$1 pod=$2
	printf '{"cniVersion":"1.0.0","name":"demo","type":"podfence","socket":"%s",
	  "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]],"dataDir":"%s"}}' \
		"$sock" "$run/ipam" |
		ip netns exec "$node" env CNI_COMMAND="$cmd" CNI_CONTAINERID="${cid[$pod]}" \
			CNI_NETNS="/run/netns/$id-$pod" CNI_IFNAME=eth0 CNI_PATH="$run/cni-bin:/usr/lib/cni" \
			CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=production;K8S_POD_NAME=$pod;K8S_POD_UID=demo-$pod" \
			"$run/cni-bin/podfence"
}

step "4/8 namespace production: three pods, wired by the podfence CNI plugin"
for pod in "${pods[@]}"; do
	ip netns add "$id-$pod"
	made_ns+=("$id-$pod")
	ip -n "$id-$pod" link set lo up
	cid[$pod]=demo$$${pod}
	out=$(cni ADD "$pod") || die "CNI ADD $pod failed: $out"
	ip[$pod]=$(printf '%s' "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ips"][0]["address"].split("/")[0])')
	ip netns exec "$id-$pod" "$PFAGENT" serve --tcp 8080,5432 --udp 8125 --id "$pod" >"$run/$pod.out" 2>&1 &
	pids+=($!)
	printf '  %-9s %-12s serves %s\n' "$pod" "${ip[$pod]}" "${ports[*]}"
done
for _ in $(seq 50); do
	ready=0
	for pod in "${pods[@]}"; do grep -q ready "$run/$pod.out" 2>/dev/null && ready=$((ready + 1)); done
	[ "$ready" -eq ${#pods[@]} ] && break
	sleep 0.1
done

# ---------------------------------------------------------------- matrix + policies
ex=$top/manifests/examples
as_written=("$ex/default-deny-all.yaml" "$ex/allow-frontend-to-backend.yaml")
completing=$ex/allow-frontend-egress-to-backend.yaml
for f in "${as_written[@]}" "$completing"; do
	[ -f "$f" ] || die "missing $f"
done
cluster_files=("$run/manifests/00-namespace.yaml" "$run"/manifests/10-pod-*.yaml)

# The live truth table: podfencectl matrix connects from inside every pod to
# every pod and sets the result beside what the policies say (exit 1 when
# they differ, which would be a bug worth stopping for).
matrix() {
	local rc=0
	ctl matrix --ports 8080/TCP,5432/TCP,8125/UDP | sed 's/^/  /' || rc=$?
	[ "$rc" -eq 0 ] || die "podfencectl matrix: observed and expected differ (exit $rc)"
}

# Copies manifests into the watched directory and waits until the controller
# holds npol policies and has put its latest plan in the kernel.
apply() { # apply NPOL FILE...
	local want=$1 f npol gen prog t0 t1
	shift
	t0=$(date +%s%N)
	for f in "$@"; do
		cp "$f" "$run/manifests/50-$(basename "$f")"
		echo "  applied ${f#"$top"/}"
	done
	for _ in $(seq 200); do
		read -r npol gen prog < <(ctl --json status 2>/dev/null | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("policies"), d.get("generation"), d.get("programmedGeneration"))' 2>/dev/null || echo "0 0 1")
		[ "$npol" = "$want" ] && [ "$gen" = "$prog" ] && break
		sleep 0.02
	done
	[ "$npol" = "$want" ] || die "the controller holds $npol policies, not $want"
	t1=$(date +%s%N)
	echo "  in the kernel $(((t1 - t0) / 1000000)) ms after the files were written"
}

step "5/8 before any policy: podfencectl matrix (every pod reaches every other)"
matrix

step "6/8 the article's two policies, as written: simulated offline first"
printf '  %s$ podfencectl simulate --reasons --ports 8080/TCP production-pods.yaml %s%s\n' "$D" \
	"${as_written[*]#"$top"/}" "$N"
# The table, and the reason of the one cell the article cares about.
"$PODFENCECTL" simulate --reasons --ports 8080/TCP "${cluster_files[@]}" "${as_written[@]}" |
	grep -v -e '^  production/backend ->' -e '^  production/database ->' -e '^  production/frontend -> production/database' |
	sed 's/^/  /'

step "7/8 applying them: frontend -> backend 8080 is still blocked"
apply 2 "${as_written[@]}"
matrix
printf '\n  %swhy (podfencectl explain production/frontend production/backend 8080/tcp):%s\n' "$B" "$N"
ctl explain production/frontend production/backend 8080/tcp | sed 's/^/  /'
if "$PODFENCECTL" --help 2>/dev/null | grep -q '^  lint '; then
	printf '\n  %sthe pitfall (podfencectl lint):%s\n' "$B" "$N"
	"$PODFENCECTL" lint "${cluster_files[@]}" "${as_written[@]}" | sed 's/^/  /' || true
else
	# LINT: `podfencectl lint` is not in this tree yet; its finding (an ingress
	# allow whose sources are egress-isolated with no egress allow toward it)
	# goes here. Until then the simulator's reason says the same.
	printf '\n  %sthe pitfall:%s an ingress allow whose clients are egress-isolated and allowed no egress toward it\n' "$B" "$N"
fi

step "8/8 the policy that completes them: frontend's egress to backend on TCP 8080"
sed -n '/^apiVersion/,$p' "$completing" | sed 's/^/  /'
printf '\n  %s$ podfencectl simulate --ports 8080/TCP production-pods.yaml (the three policies)%s\n' "$D" "$N"
"$PODFENCECTL" simulate --ports 8080/TCP "${cluster_files[@]}" "${as_written[@]}" "$completing" | sed 's/^/  /'
echo
apply 3 "$completing"
matrix
printf '\n  %s' "$B"
ctl explain production/frontend production/backend 8080/tcp | head -n 1
printf '%s' "$N"

if [ "${PODFENCE_DEMO_KEEP:-0}" = 1 ]; then
	echo
	echo "cluster left running: ip netns exec $node $PODFENCECTL --socket $sock status"
	read -r -p "press Enter to tear down " _
fi
