#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: podfence on a one-node local cluster, in one command.
#
# Installs what it needs (scripts/deps.sh), builds into build/, starts
# podfenced on its directory source (no API server), wires three pods of
# namespace "production" (frontend, backend, database) with the real CNI
# plugin, prints who can reach whom, applies the two example policies
# (default-deny-all, allow-frontend-to-backend on TCP 8080), prints the matrix
# again with the policy that decided each cell, and tears everything down —
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
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
	B='' G='' R='' D='' N=''
fi
case "${LC_ALL:-${LC_CTYPE:-${LANG:-}}}" in
*UTF-8* | *utf8* | *UTF8* | *utf-8*) OPEN='✔' SHUT='✘' ARROW='→' ;;
*) OPEN='ok' SHUT='XX' ARROW='->' ;;
esac

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
step "1/6 dependencies (scripts/deps.sh)"
scripts/deps.sh
echo "all present"
# Debian's interpreter: a user-level shim (pyenv) can take seconds per start.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

bdir=${PODFENCE_BUILD_DIR:-$top/build}
step "2/6 building into ${bdir#"$top"/}/"
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
step "3/6 a one-node cluster: podfenced on the directory source"
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

step "4/6 namespace production: three pods, wired by the podfence CNI plugin"
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

# ---------------------------------------------------------------- matrix
declare -A cell=()
probe_all() {
	local lines="" src dst p n=0 label res
	for src in "${pods[@]}"; do
		for dst in "${pods[@]}"; do
			[ "$src" = "$dst" ] && continue
			for p in "${ports[@]}"; do
				lines+="$src:$dst:$p $id-$src ${ip[$dst]} ${p#*/} ${p%/*}"$'\n'
			done
		done
	done
	while read -r label res; do
		cell[$label]=$res
		n=$((n + 1))
	done < <(printf '%s' "$lines" | "$PFAGENT" matrix --parallel 32 --timeout-ms 700)
}

mark() { # mark 1|0|self: one coloured symbol padded to 9 columns (symbols are multibyte)
	case $1 in
	self) printf '%s%s%s%*s' "$D" "·" "$N" 8 "" ;;
	1) printf '%s%s%s%*s' "$G" "$OPEN" "$N" $((9 - ${#OPEN})) "" ;;
	*) printf '%s%s%s%*s' "$R" "$SHUT" "$N" $((9 - ${#SHUT})) "" ;;
	esac
}

print_matrix() {
	local p src dst
	printf '\n'
	for p in "${ports[@]}"; do printf '  %s%-37s%s' "$B" "$p" "$N"; done
	printf '\n'
	for p in "${ports[@]}"; do printf '  %-9s %-9s%-9s%-9s' "" "${pods[@]}"; done
	printf '\n'
	for src in "${pods[@]}"; do
		for p in "${ports[@]}"; do
			printf '  %-9s ' "$src"
			for dst in "${pods[@]}"; do
				if [ "$src" = "$dst" ]; then mark self; else mark "${cell[$src:$dst:$p]}"; fi
			done
		done
		printf '\n'
	done
	printf '  %s(rows: client, columns: server; %s open, %s blocked)%s\n' "$D" "$OPEN" "$SHUT" "$N"
}

step "5/6 connectivity before any policy (every pod reaches every other)"
probe_all
print_matrix

# ---------------------------------------------------------------- 4. policies
step "6/6 applying the example policies"
examples=()
for f in "$top"/manifests/examples/*default-deny*.yaml "$top"/manifests/examples/*frontend*backend*.yaml; do
	[ -f "$f" ] && examples+=("$f")
done
if [ ${#examples[@]} -eq 0 ]; then
	# The same two policies, for a tree without manifests/examples/.
	cat >"$run/default-deny-all.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-all, namespace: production}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
EOF
	cat >"$run/allow-frontend-to-backend.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-frontend-to-backend, namespace: production}
spec:
  podSelector:
    matchExpressions: [{key: app, operator: In, values: [frontend, backend]}]
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{protocol: TCP, port: 8080}]
  egress:
  - to: [{podSelector: {matchLabels: {app: backend}}}]
    ports: [{protocol: TCP, port: 8080}]
EOF
	examples=("$run/default-deny-all.yaml" "$run/allow-frontend-to-backend.yaml")
fi
t0=$(date +%s%N)
for f in "${examples[@]}"; do
	cp "$f" "$run/manifests/50-$(basename "$f")"
	echo "  ${f#"$top"/}"
done
# Programmed once the controller holds both policies and has put its latest plan in the kernel.
for _ in $(seq 200); do
	# one status call: "policies generation programmedGeneration"
	read -r npol gen prog < <(ctl --json status 2>/dev/null | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("policies"), d.get("generation"), d.get("programmedGeneration"))' 2>/dev/null || echo "0 0 1")
	[ "$npol" = 2 ] && [ "$gen" = "$prog" ] && break
	sleep 0.02
done
t1=$(date +%s%N)
echo "  in the kernel $(((t1 - t0) / 1000000)) ms after the files were written"
probe_all
print_matrix

printf '\n  %swhy: podfencectl explain per cell%s  %s(out = client egress, in = server ingress; allowed: policy#rule, denied: the policies isolating the pod)%s\n' "$B" "$N" "$D" "$N"
why() { # why SRC DST PORT/PROTO -> "out: ...  in: ..." from the explain JSON
	ctl --json explain "production/$1" "production/$2" "$3" 2>/dev/null | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
def side(name):
    c = r.get(name) or {}
    v, pol = c.get("verdict"), (c.get("policy") or "").split("/")[-1]
    if v == "allowed":
        return "%s#%s" % (pol, c.get("rule"))
    if v == "denied":
        by = ",".join(n.split("/")[-1] for n in c.get("isolatedBy") or [])
        return "denied (%s)" % (by or "isolated")
    return v or "?"
print("out: %-52s in: %s" % (side("egress"), side("ingress")))' 2>/dev/null || echo "(explain unavailable)"
}
for src in "${pods[@]}"; do
	for dst in "${pods[@]}"; do
		[ "$src" = "$dst" ] && continue
		for p in "${ports[@]}"; do
			printf '  %-9s %s %-9s %-9s ' "$src" "$ARROW" "$dst" "$p"
			mark "${cell[$src:$dst:$p]}"
			printf '%s\n' "$(why "$src" "$dst" "${p#*/}/${p%/*}")"
		done
	done
done

if [ "${PODFENCE_DEMO_KEEP:-0}" = 1 ]; then
	echo
	echo "cluster left running: ip netns exec $node $PODFENCECTL --socket $sock status"
	read -r -p "press Enter to tear down " _
fi
