#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rewrite bare project includes (#include "x.h") to their qualified form.

Include roots (see docs/design.md, "Conventions"):
  include/     -> "podfence/addr.h"
  controller/  -> "daemon/ipam.h", "ir/ir.h"
  repo root    -> "plugin/ipam.h", "tests/support/kerneltest.h"

A bare name resolves the way the compiler resolved it before: the including
file's own folder first, else the one header of that name in the tree. A name
found in several folders and not beside the includer is reported, not guessed.
Already qualified includes are left alone, so the script can be run again
after a merge.  Usage: scripts/qualify-includes.py [repo-root]
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
AREAS = ("controller", "plugin", "tests", "bench")
INCLUDE_RE = re.compile(r'^(\s*#\s*include\s*)"([^"/]+\.h)"', re.M)


def qualified(path):
    rel = os.path.relpath(path, ROOT)
    if rel.startswith("controller" + os.sep):
        return os.path.relpath(path, os.path.join(ROOT, "controller"))
    return rel


def main():
    headers = {}
    sources = []
    for area in AREAS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, area)):
            for f in files:
                p = os.path.join(dirpath, f)
                if f.endswith(".h"):
                    headers.setdefault(f, []).append(p)
                if f.endswith((".c", ".h")):
                    sources.append(p)
    unresolved = 0
    for src in sorted(sources):
        with open(src) as fh:
            text = fh.read()

        def repl(m):
            nonlocal unresolved
            name = m.group(2)
            beside = os.path.join(os.path.dirname(src), name)
            if os.path.exists(beside):
                target = beside
            elif len(headers.get(name, [])) == 1:
                target = headers[name][0]
            else:
                print(f"{os.path.relpath(src, ROOT)}: cannot resolve \"{name}\"", file=sys.stderr)
                unresolved += 1
                return m.group(0)
            return f'{m.group(1)}"{qualified(target)}"'

        new = INCLUDE_RE.sub(repl, text)
        if new != text:
            with open(src, "w") as fh:
                fh.write(new)
    return 1 if unresolved else 0


if __name__ == "__main__":
    sys.exit(main())
