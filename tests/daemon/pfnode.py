# SPDX-License-Identifier: Apache-2.0
"""A throwaway node for podfenced's Python tests (daemon.audit, daemon.flowlog,
daemon.revoke; imported from this folder, not installed).

Topology: a node network namespace with two routed pods, the client
(10.244.0.3, host side pfa0) and the server (10.244.0.2, pfb0), each a
namespace of its own behind a veth, /32 routes and proxy ARP on the node;
podfenced runs in the node on a manifest directory and a socket in the run's
temp directory, and both pods are registered with it.

Names carry the test process's pid: namespaces pf-<tag>-<pid>-<n>-{n,a,b}
(the kernel tests' pattern, tests/support/kerneltest.c) and the temp
directory pf-daemon-<name>-<pid>-*, whose path is on podfenced's command
line. So whatever a run leaves behind can be found once its process is gone:
a run killed outright (SIGKILL, a ctest timeout) never reaches its cleanups,
and every NodeTest first sweeps what dead runs left (their podfenced, their
namespaces, their temp directory). SIGTERM, SIGINT and SIGHUP end a run
after the same sweep of its own things; a setUp that fails half way still
has its cleanups run (they are registered before anything is made)."""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

CLIENT_IP, SERVER_IP = "10.244.0.3", "10.244.0.2"
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
# The namespace the process started in: setns(None) returns to it (the
# main thread's /proc/self/ns/net is the one it is in now).
_HOST_NS = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
_NETNS_RE = re.compile(r"pf-[a-z]+-(\d+)-")
_TMP_RE = re.compile(r"pf-daemon-[a-z]+-(\d+)-")
_counter = [0]


def binaries(n):
    """Pops up to n leading non-option arguments (the binaries' paths) off
    sys.argv, before unittest reads it; None for each one missing."""
    out = []
    for _ in range(n):
        out.append(sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None)
    return out


def needs_kernel(*binaries_given):
    """Class decorator for a kernel test: skipped where its binaries are not
    given or namespaces cannot be made (not root), except under CI=true,
    where that is a failure (the brief: CI runs as root and must run them)."""
    ok = all(binaries_given) and os.geteuid() == 0
    why = "needs the podfenced/podfencectl paths and root (network namespaces)"
    if ok:
        return lambda cls: cls
    if os.environ.get("CI") == "true":
        def fail(cls):
            def setUp(self):
                self.fail("CI=true: " + why)
            cls.setUp = setUp
            return cls
        return fail
    return unittest.skip(why)


def sh(*cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stdout))
    return r.stdout


def setns(name):
    """Moves the calling thread into netns `name`; None: back where the process started."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC) if name else _HOST_NS
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + str(name))
    finally:
        if name:
            os.close(fd)


def wait_for(pred, what, tries=200, delay=0.05):
    for _ in range(tries):
        v = pred()
        if v:
            return v
        time.sleep(delay)
    raise AssertionError("timed out waiting for " + what)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def sweep(owned):
    """Removes the namespaces and temp directories whose pid owned(pid) says
    are to go, and first ends the processes (podfenced) whose command line
    names such a directory: started by a test, so ended by one, by pid."""
    tmp = tempfile.gettempdir()
    dirs = []
    for d in os.listdir(tmp):
        m = _TMP_RE.match(d)
        if m and owned(int(m.group(1))):
            dirs.append(os.path.join(tmp, d))
    if dirs:
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if any(d.encode() + b"/" in cmdline for d in dirs):
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    for name in names:
        m = _NETNS_RE.match(name)
        if m and owned(int(m.group(1))):
            sh("ip", "netns", "del", name, check=False)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def _on_signal(signum, frame):
    sys.stdout.flush()
    print("\n%s: signal %d: removing this run's namespaces, podfenced and files" % (sys.argv[0], signum),
          file=sys.stderr, flush=True)
    pid = os.getpid()
    sweep(lambda p: p == pid)
    os._exit(128 + signum)


class NodeTest(unittest.TestCase):
    """One node with its two pods per test. A subclass sets tag (two or more
    letters: the namespaces' names), name (the temp directory's) and podfenced;
    podfencectl where it calls ctl() or flows()."""

    tag = name = None
    podfenced = podfencectl = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, _on_signal)
        sweep(lambda p: not _alive(p))

    def setUp(self):
        _counter[0] += 1
        base = "pf-%s-%d-%d-" % (self.tag, os.getpid(), _counter[0])
        self.node, self.nsa, self.nsb = base + "n", base + "a", base + "b"
        self.tmp = tempfile.mkdtemp(prefix="pf-daemon-%s-%d-" % (self.name, os.getpid()))
        self.mdir = os.path.join(self.tmp, "manifests")
        self.sock = os.path.join(self.tmp, "s.sock")
        self.log = os.path.join(self.tmp, "podfenced.log")
        self.daemon = None
        self.listeners = []
        self.made = []
        self.addCleanup(self._cleanup)
        os.mkdir(self.mdir)
        for ns in (self.node, self.nsa, self.nsb):
            self.made.append(ns)
            sh("ip", "netns", "add", ns)
        n = ["ip", "-n", self.node]
        sh(*n, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for pod, hostif, ip in ((self.nsa, "pfa0", CLIENT_IP), (self.nsb, "pfb0", SERVER_IP)):
            sh(*n, "link", "add", hostif, "type", "veth", "peer", "name", "eth0", "netns", pod)
            sh(*n, "link", "set", hostif, "up")
            sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.conf.%s.proxy_arp=1" % hostif)
            sh(*n, "route", "add", ip + "/32", "dev", hostif)
            p = ["ip", "-n", pod]
            sh(*p, "link", "set", "lo", "up")
            sh(*p, "addr", "add", ip + "/32", "dev", "eth0")
            sh(*p, "link", "set", "eth0", "up")
            sh(*p, "route", "add", "default", "dev", "eth0")

    def _cleanup(self):
        for s in self.listeners:
            s.close()
        if self.daemon:
            self.daemon.kill()
            self.daemon.wait()
        for ns in self.made:
            sh("ip", "netns", "del", ns, check=False)
        if os.environ.get("PF_TEST_KEEP_LOG"):
            print("logs in", self.tmp)
        else:
            shutil.rmtree(self.tmp)

    def call(self, req):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(self.sock)
            s.sendall((json.dumps(req) + "\n").encode())
            line = s.makefile().readline()
        return json.loads(line)

    def try_call(self, req):
        try:
            return self.call(req)
        except OSError:
            return {}

    def register(self, cid, name, hostif, ip):
        r = self.call({"op": "register", "containerId": cid, "ifname": "eth0", "netns": "/run/netns/x",
                       "namespace": "production", "name": name, "hostIf": hostif, "ips": [ip],
                       "timeoutMs": 5000})
        self.assertTrue(r.get("ok"), r)

    def write(self, name, text):
        # atomically, so the directory watch sees one complete file
        tmp = os.path.join(self.tmp, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.mdir, name))

    def start_daemon(self, manifests, *extra, client="frontend"):
        """Writes manifests ({file: text}, in order), starts podfenced in the
        node with extra arguments, waits until it is ready and registers the
        server "backend" and the client (named client)."""
        for name, text in manifests.items():
            self.write(name, text)
        with open(self.log, "a") as log:
            self.daemon = subprocess.Popen(
                ["ip", "netns", "exec", self.node, self.podfenced, "--manifests", self.mdir, "--node-name",
                 "node-a", "--socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
                 "--metrics-address", "off"] + list(extra), stdout=subprocess.DEVNULL, stderr=log)
        wait_for(lambda: self.try_call({"op": "status"}).get("ready"), "podfenced ready")
        self.register("cid-b", "backend", "pfb0", SERVER_IP)
        self.register("cid-f", client, "pfa0", CLIENT_IP)


class FlowLogNodeTest(NodeTest):
    """A node whose podfenced writes the flow log, with TCP listeners on the
    server at 8080 and 9090."""

    def start(self, manifests, *extra):
        self.jsonl = os.path.join(self.tmp, "flows.jsonl")
        self.start_daemon(manifests, "--flow-log", self.jsonl, "--flow-log-group", str(200 + os.getpid() % 10000),
                          *extra)
        setns(self.nsb)
        try:
            for port in (8080, 9090):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((SERVER_IP, port))
                s.listen(64)
                self.listeners.append(s)
        finally:
            setns(None)

    # a first packet may wait for proxy ARP (up to proxy_delay, 0.8 s)
    def connect(self, port, timeout=3.0):
        setns(self.nsa)
        try:
            c = socket.socket()
            c.settimeout(timeout)
            try:
                c.connect((SERVER_IP, port))
                return True
            except OSError:
                return False
            finally:
                c.close()
        finally:
            setns(None)

    def flows(self, *args):
        out = sh(self.podfencectl, "--socket", self.sock, "flows", "-o", "json", *args)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def ctl(self, *args):
        return sh(self.podfencectl, "--socket", self.sock, *args)
