# SPDX-License-Identifier: Apache-2.0
"""A small, independent NetworkPolicy evaluator (CONFORMANCE.md section 5), used only to
cross-check the hand-written expectations of cases.py: two encodings of the same upstream
cases must agree before either is trusted to judge podfence."""

import ipaddress


def selector_matches(sel, labels):
    if sel is None:
        return True
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, vals = e["key"], e["operator"], e.get("values") or []
        has = key in labels
        if op == "In" and not (has and labels[key] in vals):
            return False
        if op == "NotIn" and has and labels[key] in vals:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
    return True


def ip_in_block(ip, block):
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block["cidr"], strict=False)
    if addr.version != net.version or addr not in net:
        return False
    return not any(addr in ipaddress.ip_network(x, strict=False) for x in block.get("except", []))


class Model:
    def __init__(self):
        self.ns_labels = {}   # ns -> labels
        self.pods = {}        # key -> {"ns", "labels", "ip", "ports": {(name, proto): number}}
        self.policies = {}    # (ns, name) -> object

    def peer_matches(self, peer, policy_ns, other):
        if "ipBlock" in peer:
            return ip_in_block(other["ip"], peer["ipBlock"])
        if "namespaceSelector" in peer:
            if not selector_matches(peer["namespaceSelector"], self.ns_labels[other["ns"]]):
                return False
        elif other["ns"] != policy_ns:
            return False
        return selector_matches(peer.get("podSelector"), other["labels"])

    @staticmethod
    def port_matches(ports, target, proto, port):
        if not ports:
            return True
        for p in ports:
            if (p.get("protocol") or "TCP").lower() != proto:
                continue
            if "port" not in p:
                return True
            want = p["port"]
            if isinstance(want, str):
                if target["ports"].get((want, proto)) == port:
                    return True
            elif want <= port <= p.get("endPort", want):
                return True
        return False

    def direction_allows(self, pod, other, direction, target, proto, port):
        isolated = False
        for (pns, _), pol in self.policies.items():
            spec = pol["spec"]
            if pns != pod["ns"] or not selector_matches(spec.get("podSelector"), pod["labels"]):
                continue
            types = spec.get("policyTypes") or (
                ["Ingress"] + (["Egress"] if spec.get("egress") else []))
            if direction not in types:
                continue
            isolated = True
            key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
            for rule in spec.get(key) or []:
                peers = rule.get(peers_key)
                if peers and not any(self.peer_matches(pe, pns, other) for pe in peers):
                    continue
                if self.port_matches(rule.get("ports"), target, proto, port):
                    return True
        return not isolated

    def allowed(self, src, dst, proto, port):
        s, d = self.pods[src], self.pods[dst]
        return (self.direction_allows(s, d, "Egress", d, proto, port) and
                self.direction_allows(d, s, "Ingress", d, proto, port))
