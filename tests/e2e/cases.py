# SPDX-License-Identifier: Apache-2.0
"""The upstream NetworkPolicy e2e cases U1–U48 of CONFORMANCE.md, as data.

Model: namespaces x, y, z (real names get a per-run suffix, so policies refer to
them only through labels); pods a, b, c in each with the single label pod=<name>;
every pod serves TCP and UDP on 80 and 81 with container ports named
serve-<port>-<proto>.

A case is a list of steps. A step is a list of actions then the expectations:
for each probed (proto, port), edits applied in order to an all-allowed 9x9
matrix ("deny"/"allow", client pattern, server pattern). Patterns: "*" all pods,
"x*" all pods of x, "xa" one pod, "yb,zb" a list.

Policies are written with placeholders the cluster resolves at run time:
"$ns:y" -> y's real name, "$ip:yb" -> y/b's pod IP, "$net4:xb" -> the /4
network holding x/b's IP (U35/U36, E2E-new's canonical form).
"""

NAME = "kubernetes.io/metadata.name"


# ---- policy builders (NetworkPolicy spec fragments) ----
def sel(**labels):
    return {"matchLabels": dict(labels)} if labels else {}


def expr(key, op, values):
    return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}


def pod(s):
    return {"podSelector": s}


def nsel(s):
    return {"namespaceSelector": s}


def both(ns_s, pod_s):
    return {"namespaceSelector": ns_s, "podSelector": pod_s}


def ipb(cidr, *excepts):
    b = {"cidr": cidr}
    if excepts:
        b["except"] = list(excepts)
    return {"ipBlock": b}


def port(p=None, proto=None):
    e = {}
    if p is not None:
        e["port"] = p
    if proto is not None:
        e["protocol"] = proto
    return e


def policy(ns, name, podsel, types, ingress=None, egress=None):
    spec = {"podSelector": podsel, "policyTypes": list(types)}
    if "Ingress" in types:
        spec["ingress"] = ingress if ingress is not None else []
    if "Egress" in types:
        spec["egress"] = egress if egress is not None else []
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": f"$ns:{ns}"}, "spec": spec}


def nsname(base):
    return sel(**{NAME: f"$ns:{base}"})


# ---- actions ----
def apply(*pols):
    return [("apply", p) for p in pols]


def update(pol):
    return [("update", pol)]


def delete_all():
    return [("delete-all-policies", None)]


def label_ns(base, **labels):
    return [("label-ns", (base, labels))]


def label_pod(pk, **labels):
    return [("label-pod", (pk, labels))]


def deny(src, dst):
    return ("deny", src, dst)


def allow(src, dst):
    return ("allow", src, dst)


def step(actions, **expect):
    """expect keys: tcp80, tcp81, udp80, udp81, sctp80, sctp81 -> [edits]."""
    ex = {}
    for k, edits in expect.items():
        proto = k.rstrip("0123456789")
        ex[(proto, int(k[len(proto):]))] = list(edits)
    return {"actions": actions, "expect": ex}


def case(cid, title, steps, sctp=False):
    return {"id": cid, "title": title, "steps": steps, "sctp": sctp}


def u13_peer():
    return [{"from": [both(nsname("y"), sel(pod="a"))]}]


CASES = [
    case("U1", "should support a 'default-deny-ingress' policy", [
        step(apply(policy("x", "deny-ingress", sel(), ["Ingress"], [])),
             tcp80=[deny("*", "x*")])]),
    case("U2", "should support a 'default-deny-all' policy", [
        step(apply(policy("x", "deny-all", sel(), ["Ingress", "Egress"], [], [])),
             tcp80=[deny("*", "x*"), deny("x*", "*")])]),
    case("U3", "should enforce policy to allow traffic from pods within server namespace "
               "based on PodSelector", [
        step(apply(policy("x", "x-a-allows-x-b", sel(pod="a"), ["Ingress"],
                          [{"from": [pod(sel(pod="b"))]}])),
             tcp80=[deny("*", "xa"), allow("xb", "xa")])]),
    case("U4", "should enforce policy to allow ingress traffic for a target", [
        step(apply(policy("x", "deny-all", sel(), ["Ingress"], []),
                   policy("x", "allow-all-to-a", sel(pod="a"), ["Ingress"],
                          [{"from": [both(sel(), sel())]}])),
             tcp80=[deny("*", "xb"), deny("*", "xc")])]),
    case("U5", "should enforce policy to allow ingress traffic from pods in all namespaces", [
        step(apply(policy("x", "allow-from-another-ns", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(sel())]}])),
             tcp80=[])]),
    case("U6", "should enforce policy to allow traffic only from a different namespace, "
               "based on NamespaceSelector", [
        step(apply(policy("x", "allow-client-a-via-ns-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))]}])),
             tcp80=[deny("x*", "xa"), deny("z*", "xa")])]),
    case("U7", "should enforce policy based on PodSelector with MatchExpressions", [
        step(apply(policy("x", "x-a-allows-x-b", sel(pod="a"), ["Ingress"],
                          [{"from": [pod(expr("pod", "In", ["b"]))]}])),
             tcp80=[deny("*", "xa"), allow("xb", "xa")])]),
    case("U8", "should enforce policy based on NamespaceSelector with MatchExpressions", [
        step(apply(policy("x", "allow-ns-y-match-expr", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(expr(NAME, "In", ["$ns:y"]))]}])),
             tcp80=[deny("x*", "xa"), deny("z*", "xa")])]),
    case("U9", "should enforce policy based on PodSelector or NamespaceSelector", [
        step(apply(policy("x", "allow-ns-y-z-or-pod-b", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(expr(NAME, "NotIn", ["$ns:x"])),
                                     pod(sel(pod="b"))]}])),
             tcp80=[deny("xc", "xa")])]),
    case("U10", "should enforce policy based on PodSelector and NamespaceSelector", [
        step(apply(policy("x", "allow-ns-y-z-and-pod-b", sel(pod="a"), ["Ingress"],
                          [{"from": [both(expr(NAME, "NotIn", ["$ns:x"]), sel(pod="b"))]}])),
             tcp80=[deny("*", "xa"), allow("yb,zb", "xa")])]),
    case("U11", "should enforce policy based on Multiple PodSelectors and NamespaceSelectors", [
        step(apply(policy("x", "allow-ns-y-z-pod-b-c", sel(pod="a"), ["Ingress"],
                          [{"from": [both(expr(NAME, "NotIn", ["$ns:x"]),
                                          expr("pod", "In", ["b", "c"]))]}])),
             tcp80=[deny("*", "xa"), allow("yb,yc,zb,zc", "xa")])]),
    case("U12", "should enforce policy based on any PodSelectors", [
        step(apply(policy("x", "allow-ns-x-pod-b-c", sel(pod="a"), ["Ingress"],
                          [{"from": [pod(sel(pod="b")), pod(sel(pod="c"))]}])),
             tcp80=[deny("*", "xa"), allow("xb,xc", "xa")])]),
    case("U13", "should enforce policy to allow traffic only from a pod in a different namespace "
                "based on PodSelector and NamespaceSelector", [
        step(apply(policy("x", "allow-ns-y-pod-a", sel(pod="a"), ["Ingress"], u13_peer())),
             tcp80=[deny("*", "xa"), allow("ya", "xa")])]),
    case("U14", "should enforce policy based on Ports", [
        step(apply(policy("x", "allow-client-a-via-ns-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))], "ports": [port(81, "TCP")]}])),
             tcp81=[deny("x*", "xa"), deny("z*", "xa")])]),
    case("U15", "should enforce multiple, stacked policies with overlapping podSelectors", [
        step(apply(policy("x", "allow-client-a-via-ns-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))], "ports": [port(81, "TCP")]}])),
             tcp81=[deny("x*", "xa"), deny("z*", "xa")], tcp80=[deny("*", "xa")]),
        step(apply(policy("x", "allow-client-a-via-ns-selector-80", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))], "ports": [port(80, "TCP")]}])),
             tcp80=[deny("x*", "xa"), deny("z*", "xa")])]),
    case("U16", "should support allow-all policy", [
        step(apply(policy("x", "allow-all", sel(), ["Ingress"], [{}])), tcp80=[], tcp81=[])]),
    case("U17", "should allow ingress access on one named port", [
        step(apply(policy("x", "allow-all", sel(), ["Ingress"],
                          [{"ports": [port("serve-81-tcp")]}])),
             tcp81=[], tcp80=[deny("*", "x*")])]),
    case("U18", "should allow ingress access from namespace on one named port", [
        step(apply(policy("x", "allow-client-a-via-ns-selector-80", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))],
                            "ports": [port("serve-80-tcp", "TCP")]}])),
             tcp80=[deny("x*", "xa"), deny("z*", "xa")], tcp81=[deny("*", "xa")])]),
    case("U19", "should allow egress access on one named port", [
        step(apply(policy("x", "allow-egress", sel(), ["Egress"], None,
                          [{"ports": [port("serve-80-tcp")]}])),
             tcp80=[], tcp81=[deny("x*", "*")])]),
    case("U20", "should enforce updated policy", [
        step(apply(policy("x", "allow-all-mutate-to-deny-all", sel(), ["Ingress"], [{}])),
             tcp81=[]),
        step(update(policy("x", "allow-all-mutate-to-deny-all", sel(), ["Ingress"], [])),
             tcp81=[deny("*", "x*")])]),
    case("U21", "should allow ingress access from updated namespace", [
        step(apply(policy("x", "allow-client-a-via-ns-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(sel(ns2="updated"))]}])),
             tcp80=[deny("*", "xa")]),
        step(label_ns("y", ns2="updated"), tcp80=[deny("*", "xa"), allow("y*", "xa")])]),
    case("U22", "should allow ingress access from updated pod", [
        step(apply(policy("x", "allow-client-a-via-pod-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [pod(sel(pod="b", pod2="updated"))]}])),
             tcp80=[deny("*", "xa")]),
        step(label_pod("xb", pod2="updated"), tcp80=[deny("*", "xa"), allow("xb", "xa")])]),
    case("U23", "should deny ingress from pods on other namespaces", [
        step(apply(policy("x", "deny-empty-policy", sel(), ["Ingress"],
                          [{"from": [pod(sel())]}])),
             tcp80=[deny("y*", "x*"), deny("z*", "x*")])]),
    case("U24", "should deny ingress access to updated pod", [
        step(apply(policy("x", "deny-ingress-via-label-selector", sel(target="isolated"),
                          ["Ingress"], [])),
             tcp80=[]),
        step(label_pod("xa", target="isolated"), tcp80=[deny("*", "xa")])]),
    case("U25", "should deny egress from pods based on PodSelector", [
        step(apply(policy("x", "deny-egress-pod-a", sel(pod="a"), ["Egress"], None, [])),
             tcp80=[deny("xa", "*")])]),
    case("U26", "should deny egress from all pods in a namespace", [
        step(apply(policy("x", "deny-egress-ns-x", sel(), ["Egress"], None, [])),
             tcp80=[deny("x*", "*")])]),
    case("U27", "should work with Ingress, Egress specified together", [
        step(apply(policy("x", "allow-client-a-via-pod-selector", sel(pod="a"),
                          ["Egress", "Ingress"], [{"from": [pod(sel(pod="b"))]}],
                          [{"ports": [port(80)]}])),
             tcp80=[deny("*", "xa"), allow("xb", "xa")],
             tcp81=[deny("*", "xa"), allow("xb", "xa"), deny("xa", "*")])]),
    case("U28", "should support denying of egress traffic on the client side (even if the "
                "server explicitly allows this traffic)", [
        step(apply(policy("x", "allow-to-ns-y-pod-a", sel(pod="a"), ["Egress"], None,
                          [{"to": [both(nsname("y"), sel(pod="a"))]}]),
                   policy("y", "allow-from-xa-on-ya-match-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [both(nsname("x"), sel(pod="a"))]}]),
                   policy("y", "allow-from-xa-on-yb-match-selector", sel(pod="b"), ["Ingress"],
                          [{"from": [both(nsname("x"), sel(pod="a"))]}])),
             tcp80=[deny("xa", "*"), allow("xa", "ya"), deny("*", "ya"), allow("xa", "ya"),
                    deny("*", "yb")])]),
    case("U29", "should enforce egress policy allowing traffic to a server in a different "
                "namespace based on PodSelector and NamespaceSelector", [
        step(apply(policy("x", "allow-to-ns-y-pod-a", sel(pod="a"), ["Egress"], None,
                          [{"to": [both(nsname("y"), sel(pod="a"))]}])),
             tcp80=[deny("xa", "*"), allow("xa", "ya")])]),
    case("U30", "should enforce ingress policy allowing any port traffic to a server on a "
                "specific protocol", [
        step(apply(policy("x", "allow-ingress-by-proto", sel(pod="a"), ["Ingress"],
                          [{"ports": [port(None, "TCP")]}])),
             tcp80=[], udp80=[deny("*", "xa")])]),
    case("U31", "should enforce multiple ingress policies with ingress allow-all policy taking "
                "precedence", [
        step(apply(policy("x", "allow-ingress-port-80", sel(), ["Ingress"],
                          [{"ports": [port(80)]}])),
             tcp81=[deny("*", "x*")]),
        step(apply(policy("x", "allow-ingress", sel(), ["Ingress"], [{}])), tcp81=[])]),
    case("U32", "should enforce multiple egress policies with egress allow-all policy taking "
                "precedence", [
        step(apply(policy("x", "allow-egress-port-80", sel(), ["Egress"], None,
                          [{"ports": [port(80)]}])),
             tcp81=[deny("x*", "*")]),
        step(apply(policy("x", "allow-egress", sel(), ["Egress"], None, [{}])), tcp81=[])]),
    case("U33", "should stop enforcing policies after they are deleted", [
        step(apply(policy("x", "deny-all", sel(), ["Ingress", "Egress"], [], [])),
             tcp80=[deny("*", "x*"), deny("x*", "*")]),
        step(delete_all(), tcp80=[])]),
    case("U34", "should allow egress access to server in CIDR block", [
        step(apply(policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"), ["Egress"],
                          None, [{"to": [ipb("$ip:yb/32")]}])),
             tcp80=[deny("xa", "*"), allow("xa", "yb")])]),
    case("U35", "should enforce except clause while egress access to server in CIDR block", [
        step(apply(policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"), ["Egress"],
                          None, [{"to": [ipb("$net4:xb", "$ip:xb/32")]}])),
             tcp80=[deny("xa", "xb")])]),
    case("U36", "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is "
                "allowed", [
        step(apply(policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"), ["Egress"],
                          None, [{"to": [ipb("$net4:xb", "$ip:xb/32")]}])),
             tcp80=[deny("xa", "xb")]),
        step(update(policy("x", "allow-client-a-via-cidr-egress-rule", sel(pod="a"), ["Egress"],
                           None, [{"to": [ipb("$ip:xb/32")]}])),
             tcp80=[deny("xa", "*"), allow("xa", "xb")])]),
    case("U37", "should enforce policies to check ingress and egress policies can be controlled "
                "independently based on PodSelector", [
        step(apply(policy("x", "allow-egress-for-target", sel(pod="a"), ["Egress"], None,
                          [{}])),
             tcp80=[]),
        step(apply(policy("x", "deny-ingress-via-label-selector", sel(pod="a"), ["Ingress"],
                          [])),
             tcp80=[deny("*", "xa")])]),
    case("U38", "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the "
                "plugin doesn't support SCTP", [
        step(apply(policy("x", "deny-ingress", sel(), ["Ingress"], []),
                   policy("x", "allow-only-sctp-ingress-on-port-81", sel(pod="a"), ["Ingress"],
                          [{"ports": [port(81, "SCTP")]}])),
             tcp81=[deny("*", "x*")])]),
    case("U39", "should properly isolate pods that are selected by a policy allowing SCTP, even "
                "if the plugin doesn't support SCTP", [
        step(apply(policy("x", "allow-only-sctp-ingress-on-port-80", sel(pod="a"), ["Ingress"],
                          [{"ports": [port(80, "SCTP")]}])),
             tcp81=[deny("*", "xa")])]),
    case("U40", "should not allow access by TCP when a policy specifies only UDP", [
        step(apply(policy("x", "allow-only-udp-ingress-on-port-81", sel(pod="a"), ["Ingress"],
                          [{"ports": [port(81, "UDP")]}])),
             tcp81=[deny("*", "xa")])]),
    case("U41", "should enforce policy to allow traffic based on NamespaceSelector with "
                "MatchLabels using default ns label", [
        step(apply(policy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label",
                          sel(pod="a"), ["Ingress"], [{"from": [nsel(nsname("y"))]}])),
             tcp80=[deny("x*", "xa"), deny("z*", "xa")])]),
    case("U42", "should enforce policy based on NamespaceSelector with MatchExpressions using "
                "default ns label", [
        step(apply(policy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label",
                          sel(pod="a"), ["Egress"], None,
                          [{"to": [nsel(expr(NAME, "NotIn", ["$ns:y"]))]}])),
             tcp80=[deny("xa", "y*")])]),
    case("U43", "[UDP] should support a 'default-deny-ingress' policy", [
        step(apply(policy("x", "deny-all", sel(), ["Ingress"], [])), udp80=[deny("*", "x*")])]),
    case("U44", "[UDP] should enforce policy based on Ports", [
        step(apply(policy("x", "allow-ingress-on-port-81-ns-x", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))], "ports": [port(81, "UDP")]}])),
             udp81=[deny("x*", "xa"), deny("z*", "xa")])]),
    case("U45", "[UDP] should enforce policy to allow traffic only from a pod in a different "
                "namespace based on PodSelector and NamespaceSelector", [
        step(apply(policy("x", "allow-client-a-via-ns-pod-selector", sel(pod="a"), ["Ingress"],
                          u13_peer())),
             udp80=[deny("*", "xa"), allow("ya", "xa")])]),
    # SCTP: the kernel here may lack SCTP sockets, so the expectations are checked on the
    # ruleset, and TCP/UDP on the same ports are probed live: an SCTP-only allow must never
    # open them (every x/a column closed on TCP and UDP).
    case("U46", "[SCTP] should support a 'default-deny-ingress' policy", [
        step(apply(policy("x", "deny-all", sel(), ["Ingress"], [])),
             sctp80=[deny("*", "x*")], tcp80=[deny("*", "x*")], udp80=[deny("*", "x*")])],
         sctp=True),
    case("U47", "[SCTP] should enforce policy based on Ports", [
        step(apply(policy("x", "allow-ingress-on-port-81-ns-x", sel(pod="a"), ["Ingress"],
                          [{"from": [nsel(nsname("y"))], "ports": [port(81, "SCTP")]}])),
             sctp81=[deny("x*", "xa"), deny("z*", "xa")], tcp81=[deny("*", "xa")],
             udp81=[deny("*", "xa")])],
         sctp=True),
    case("U48", "[SCTP] should enforce policy to allow traffic only from a pod in a different "
                "namespace based on PodSelector and NamespaceSelector", [
        step(apply(policy("x", "allow-client-a-via-ns-pod-selector", sel(pod="a"), ["Ingress"],
                          [{"from": [both(nsname("y"), sel(pod="a"))],
                            "ports": [port(80, "SCTP")]}])),
             sctp80=[deny("*", "xa"), allow("ya", "xa")], tcp80=[deny("*", "xa")],
             udp80=[deny("*", "xa")])],
         sctp=True),
]

POD_KEYS = [b + p for b in "xyz" for p in "abc"]


def expand(pattern):
    """'*' / 'x*' / 'xa' / 'yb,zb' -> list of short pod keys."""
    out = []
    for part in pattern.split(","):
        if part == "*":
            out += POD_KEYS
        elif part.endswith("*"):
            out += [k for k in POD_KEYS if k[0] == part[0]]
        elif part in POD_KEYS:
            out.append(part)
        else:
            raise ValueError(f"bad pod pattern {part!r}")
    return out


def expected_matrix(edits):
    """All-allowed 9x9 with the edits applied in order: {(src, dst): bool} on short keys."""
    m = {(s, d): True for s in POD_KEYS for d in POD_KEYS if s != d}
    for verdict, src, dst in edits:
        for s in expand(src):
            for d in expand(dst):
                if s != d:
                    m[(s, d)] = verdict == "allow"
    return m


def resolve(obj, subst, family=4):
    """Replaces "$kind:arg" placeholders (anywhere inside strings) through subst(kind, arg).
    For family 6 (subst then answers IPv6 addresses) a host prefix "/32" becomes "/128"."""
    if isinstance(obj, dict):
        return {k: resolve(v, subst, family) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, subst, family) for v in obj]
    if isinstance(obj, str) and obj.startswith("$"):
        head, _, tail = obj[1:].partition("/")
        kind, _, arg = head.partition(":")
        val = subst(kind, arg)
        if family == 6 and tail == "32":
            tail = "128"
        return f"{val}/{tail}" if tail else val
    return obj
