#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""e2e.cases: the case table U1–U48 is complete and self-consistent.

Every expected truth table written by hand in cases.py must equal what the
independent evaluator in refeval.py computes from the same policies, step by
step (labels and updates included). No root, no kernel.
"""

import ipaddress
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases  # noqa: E402
import refeval  # noqa: E402

PORT_NAMES = [(p, pr) for p in (80, 81) for pr in ("tcp", "udp", "sctp")]


def fake_model(family):
    """The conformance pods, with the addresses a dual-stack run probes in that family."""
    m = refeval.Model()
    for b in "xyz":
        m.ns_labels[b] = {cases.NAME: b}
    for i, k in enumerate(cases.POD_KEYS):
        ip = f"10.244.{i % 2 + 1}.{10 + i}" if family == 4 else f"fd00:244:{i % 2 + 1}::{10 + i:x}"
        m.pods[k] = {"ns": k[0], "labels": {"pod": k[1]}, "ip": ip,
                     "ports": {(f"serve-{p}-{pr}", pr): p for p, pr in PORT_NAMES}}
    return m


def subst_for(m, family):
    def subst(kind, arg):
        if kind == "ns":
            return arg
        if kind == "ip":
            return m.pods[arg]["ip"]
        if kind == "net4":
            return str(ipaddress.ip_network(m.pods[arg]["ip"] + ("/4" if family == 4 else "/16"),
                                            strict=False))
        raise ValueError(kind)
    return subst


def run_actions(m, actions, family):
    for kind, arg in actions:
        if kind in ("apply", "update"):
            pol = cases.resolve(arg, subst_for(m, family), family)
            m.policies[(pol["metadata"]["namespace"], pol["metadata"]["name"])] = pol
        elif kind == "delete-all-policies":
            m.policies.clear()
        elif kind == "label-ns":
            m.ns_labels[arg[0]].update(arg[1])
        elif kind == "label-pod":
            m.pods[arg[0]]["labels"].update(arg[1])
        else:
            raise ValueError(kind)


def main():
    ids = [c["id"] for c in cases.CASES]
    errors = []
    if ids != [f"U{i}" for i in range(1, 49)]:
        errors.append(f"case ids are not exactly U1..U48: {ids}")
    # The hand-written tables hold for IPv4 and for the IPv6 run (e2e.conformance6).
    for family in (4, 6):
        for c in cases.CASES:
            m = fake_model(family)
            for si, st in enumerate(c["steps"]):
                run_actions(m, st["actions"], family)
                if not st["expect"]:
                    errors.append(f"{c['id']} step {si + 1}: nothing is probed")
                for (proto, port), edits in st["expect"].items():
                    want = cases.expected_matrix(edits)
                    for (s, d), ok in want.items():
                        got = m.allowed(s, d, proto, port)
                        if got != ok:
                            errors.append(f"IPv{family} {c['id']} step {si + 1} {proto}/{port} "
                                          f"{s}->{d}: table says {ok}, evaluator says {got}")
    for e in errors:
        print("FAIL:", e)
    print(f"e2e.cases: {len(cases.CASES)} cases, IPv4 and IPv6,",
          "FAILED" if errors else "table and evaluator agree")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
