# SPDX-License-Identifier: Apache-2.0
"""A local cluster of network namespaces for podfence's end-to-end tests.

Topology (all names carry the run id, so parallel runs never collide):

    cp   (control plane)  br0 192.168.77.254/24, the test API server, the test driver
     |-- vn1 <-> eth0 in node1 (192.168.77.1)   pods 10.244.1.0/24   podfenced #1
     `-- vn2 <-> eth0 in node2 (192.168.77.2)   pods 10.244.2.0/24   podfenced #2

Each node routes the other node's pod range over its eth0. Pods are network
namespaces wired by a CNI plugin (the real `podfence`, or the reference `ptp`
as a stand-in for the harness self-test) executed inside the node namespace
with the CNI environment and the config JSON on stdin, exactly as a runtime
calls it. Every pod gets a ClusterIP that each node DNATs to the pod IP in its
own `ip kube-proxy-emu` table (prerouting, priority dstnat), as kube-proxy's
nftables mode does, so policy is enforced on the post-DNAT tuple.

The driver process moves its main thread into `cp` so it reaches the API
server over TCP without a single change to the host namespace.
"""

import ctypes
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

CLONE_NEWNET = 0x40000000
NAME_LABEL = "kubernetes.io/metadata.name"
SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")
NODE_NET = "192.168.77"   # control plane bridge in cp
PEER_NET = "192.168.78"   # node-to-node veth for pod traffic
PEER_NET6 = "fd00:78"     # the same, IPv6 (dual-stack clusters)
PORTS = ((80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp"))

_counter = [0]
_counter_lock = threading.Lock()


class E2EError(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(args, ns=None, input=None, check=True, timeout=60, env=None):
    """Runs a command (inside netns `ns` when given); returns CompletedProcess."""
    if ns:
        args = ["ip", "netns", "exec", ns] + list(args)
    try:
        p = subprocess.run(args, input=input, capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise E2EError(f"timed out after {timeout}s: {' '.join(args)}") from e
    if check and p.returncode != 0:
        raise E2EError(f"{' '.join(args)} -> exit {p.returncode}: "
                       f"{(p.stderr or p.stdout).strip()[:2000]}")
    return p


def setns_thread(name):
    """Moves the calling thread into netns `name` (threads it starts inherit it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)



def in_netns(netns, fn):
    """Runs fn() on a thread moved into netns and returns its result (or
    raises its exception); sockets it makes, and threads it starts, stay there."""
    out = {}

    def run():
        try:
            setns_thread(netns)
            out["v"] = fn()
        except Exception as e:  # noqa: BLE001 — re-raised below
            out["e"] = e
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["v"]

def netns_list():
    p = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def can_create_netns():
    name = f"pfe-probe-{os.getpid()}"
    ok = sh(["ip", "netns", "add", name], check=False).returncode == 0
    if ok:
        sh(["ip", "netns", "del", name], check=False)
    return ok


class Kube:
    """Minimal Kubernetes REST client (what kubectl would do) for the test API server."""

    def __init__(self, url, token=None, ca=None):
        self.url = url.rstrip("/")
        self.token = token
        self.ctx = None
        if url.startswith("https"):
            self.ctx = ssl.create_default_context(cafile=ca) if ca else \
                ssl._create_unverified_context()
            self.ctx.check_hostname = False if not ca else self.ctx.check_hostname

    @staticmethod
    def path(kind, ns=None, name=None, sub=None):
        base = {"namespaces": "/api/v1", "pods": "/api/v1", "nodes": "/api/v1",
                "networkpolicies": "/apis/networking.k8s.io/v1"}[kind]
        p = base
        if ns and kind not in ("namespaces", "nodes"):
            p += f"/namespaces/{ns}"
        p += f"/{kind}"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    def request(self, method, path, body=None, ctype="application/json", ok404=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        last = None
        for _ in range(50):  # the server may be restarting under a fault test
            try:
                with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                    raw = r.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as e:
                if e.code == 404 and ok404:
                    return None
                if e.code in (409, 429, 500, 503) and method != "POST":
                    last = e
                    time.sleep(0.2)
                    continue
                raise E2EError(f"{method} {path}: HTTP {e.code}: {e.read()[:500]!r}") from e
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                last = e
                time.sleep(0.2)
        raise E2EError(f"{method} {path}: {last}")

    def get(self, kind, ns=None, name=None, ok404=False):
        return self.request("GET", self.path(kind, ns, name), ok404=ok404)

    def create(self, kind, obj):
        ns = obj["metadata"].get("namespace")
        return self.request("POST", self.path(kind, ns), obj)

    def update(self, kind, obj, sub=None):
        md = obj["metadata"]
        return self.request("PUT", self.path(kind, md.get("namespace"), md["name"], sub), obj)

    def modify(self, kind, ns, name, fn, sub=None):
        """GET, fn(obj), PUT — retried on a resourceVersion conflict."""
        for _ in range(20):
            obj = self.get(kind, ns, name)
            fn(obj)
            try:
                return self.update(kind, obj, sub)
            except E2EError as e:
                if "HTTP 409" not in str(e):
                    raise
        raise E2EError(f"update {kind} {ns}/{name}: conflicts never stopped")

    def delete(self, kind, ns=None, name=None):
        return self.request("DELETE", self.path(kind, ns, name), ok404=True)

    def list(self, kind, ns=None):
        return self.get(kind, ns).get("items", [])


class Node:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = f"node{index}-{cluster.run_id}"
        self.netns = f"{cluster.prefix}-n{index}"
        self.addr = f"{NODE_NET}.{index}"
        self.pod_cidr = f"10.244.{index}.0/24"
        self.pod_cidr6 = f"fd00:244:{index}::/64"
        self.dir = os.path.join(cluster.tmp, f"node{index}")
        self.socket = os.path.join(self.dir, "podfence.sock")
        self.state_dir = os.path.join(self.dir, "state")
        self.ipam_dir = os.path.join(self.dir, "ipam")
        self.daemon = None
        self.daemon_log = os.path.join(self.dir, "podfenced.log")

    def sh(self, args, **kw):
        return sh(args, ns=self.netns, **kw)


class Pod:
    def __init__(self, ns, name, node, labels, ports):
        self.ns = ns            # real namespace name
        self.name = name
        self.node = node
        self.labels = dict(labels)
        self.ports = ports      # [(port, proto)]
        self.netns = None
        self.container_id = None
        self.ip = None
        self.ip6 = None         # dual-stack clusters only
        self.cluster_ip = None
        self.server = None
        self.uid = None
        self.cni_conf = None    # the network config of its ADD (DEL sends the same)

    @property
    def key(self):
        return f"{self.ns}/{self.name}"


class Cluster:
    """Owns every namespace, process and file it creates; teardown() removes them all."""

    def __init__(self, build_dir, plugin="podfence", nodes=2, podfenced=True,
                 apiserver=True, keep_logs_on_failure=True, dual_stack=False):
        with _counter_lock:
            _counter[0] += 1
            n = _counter[0]
        self.run_id = f"{os.getpid()}-{n}"
        self.prefix = f"pfe-{self.run_id}"
        self.build = os.path.abspath(build_dir)
        self.plugin = plugin
        # Dual stack: every pod also gets an address of its node's pod_cidr6, the nodes
        # route IPv6 between them, and probe_family 6 probes pods' IPv6 addresses directly
        # (the ClusterIP emulation is IPv4 only).
        self.dual_stack = dual_stack
        self.probe_family = 4
        self.use_podfenced = podfenced
        self.use_apiserver = apiserver
        self.tmp = tempfile.mkdtemp(prefix=f"pf-e2e-{self.run_id}-")
        self.cp = f"{self.prefix}-cp"
        self.nodes = [Node(self, i + 1) for i in range(nodes)]
        self.created_netns = []
        self.procs = []
        self.pods = {}
        self.svc_next = 10
        self.kube = None
        self.api = None
        self.pfagent = self.binary("pfagent", "tests/tools")
        self.cni_bin = os.path.join(self.tmp, "cni-bin")
        self._torn_down = False
        self.lock = threading.Lock()

    # ---- binaries ----
    def binary(self, name, sub):
        for cand in (os.path.join(self.build, sub, name), os.path.join(self.build, name)):
            if os.access(cand, os.X_OK):
                return cand
        return None

    # ---- lifecycle ----
    def netns_add(self, name):
        sh(["ip", "netns", "add", name])
        self.created_netns.append(name)
        sh(["ip", "link", "set", "lo", "up"], ns=name)
        return name

    def spawn(self, args, ns=None, log=None, env=None):
        if ns:
            args = ["ip", "netns", "exec", ns] + list(args)
        out = open(log, "ab") if log else subprocess.DEVNULL
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        if log:
            out.close()
        self.procs.append(p)
        return p

    def kill(self, p, sig=signal.SIGTERM, wait=5.0):
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(sig)
            p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)

    def setup_network(self):
        self.netns_add(self.cp)
        sh(["ip", "-n", self.cp, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", self.cp, "addr", "add", f"{NODE_NET}.254/24", "dev", "br0"])
        sh(["ip", "-n", self.cp, "link", "set", "br0", "up"])
        for node in self.nodes:
            os.makedirs(node.state_dir, exist_ok=True)
            os.makedirs(node.ipam_dir, exist_ok=True)
            self.netns_add(node.netns)
            sh(["ip", "-n", self.cp, "link", "add", f"vn{node.index}", "type", "veth",
                "peer", "name", "eth0", "netns", node.netns])
            sh(["ip", "-n", self.cp, "link", "set", f"vn{node.index}", "master", "br0", "up"])
            sh(["ip", "-n", node.netns, "addr", "add", f"{node.addr}/24", "dev", "eth0"])
            sh(["ip", "-n", node.netns, "link", "set", "eth0", "up"])
            node.sh(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            if self.dual_stack:
                node.sh(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
            self.setup_dnat(node)
        # Pod traffic between nodes takes a veth of its own, node to node; the bridge in
        # cp only carries the control plane (API server).
        if len(self.nodes) == 2:
            a, b = self.nodes
            sh(["ip", "-n", a.netns, "link", "add", "peer0", "type", "veth", "peer", "name",
                "peer0", "netns", b.netns])
            for n in (a, b):
                sh(["ip", "-n", n.netns, "addr", "add", f"{PEER_NET}.{n.index}/24", "dev", "peer0"])
                if self.dual_stack:
                    sh(["ip", "-n", n.netns, "addr", "add", f"{PEER_NET6}::{n.index}/64", "dev",
                        "peer0", "nodad"])
                sh(["ip", "-n", n.netns, "link", "set", "peer0", "up"])
            for n, other in ((a, b), (b, a)):
                sh(["ip", "-n", n.netns, "route", "add", other.pod_cidr, "via",
                    f"{PEER_NET}.{other.index}"])
                if self.dual_stack:
                    sh(["ip", "-n", n.netns, "route", "add", other.pod_cidr6, "via",
                        f"{PEER_NET6}::{other.index}"])
        else:
            for node in self.nodes:
                for other in self.nodes:
                    if other is not node:
                        sh(["ip", "-n", node.netns, "route", "add", other.pod_cidr, "via",
                            other.addr])
        os.makedirs(self.cni_bin, exist_ok=True)
        for name, path in (("podfence", self.binary("podfence", "plugin")),
                           ("host-local", "/usr/lib/cni/host-local"),
                           ("ptp", "/usr/lib/cni/ptp"), ("loopback", "/usr/lib/cni/loopback")):
            if path:
                os.symlink(path, os.path.join(self.cni_bin, name))
        setns_thread(self.cp)

    def setup_dnat(self, node):
        # kube-proxy nftables mode: DNAT at prerouting/dstnat (pod traffic) and
        # output/dstnat (node-local), one map from ClusterIP to pod IP.
        rules = """
table ip kube-proxy-emu {
  map svc { type ipv4_addr : ipv4_addr; }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    dnat to ip daddr map @svc; }
  chain output { type nat hook output priority -100; policy accept;
    dnat to ip daddr map @svc; }
}
"""
        node.sh(["nft", "-f", "-"], input=rules)

    def teardown(self):
        if self._torn_down:
            return
        self._torn_down = True
        for p in reversed(self.procs):
            try:
                self.kill(p, signal.SIGKILL if p is not self.api else signal.SIGTERM, wait=3)
            except Exception:  # noqa: BLE001 — cleanup must go on
                pass
        # Anything else still running from this run (its command line names the run's
        # private temp dir): started by us, so ended by us, by pid.
        for pid in self.run_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for name in reversed(self.created_netns):
            sh(["ip", "netns", "del", name], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_pids(self):
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if self.tmp.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
        return out

    def leftovers(self):
        """What the run left on the host: namespaces and live processes."""
        left = [n for n in netns_list() if n.startswith(self.prefix + "-")]
        left += [f"pid {p.pid}" for p in self.procs if p.poll() is None]
        left += [f"pid {pid}" for pid in self.run_pids()]
        return left

    # ---- control plane ----
    def gen_tls(self, d):
        """CA + server certificate for the cp address + client certificate, written where
        the fixture looks (it keeps existing files), so TLS is verified end to end."""
        os.makedirs(d, exist_ok=True)

        def ossl(*args):
            sh(["openssl"] + list(args), timeout=60, env=dict(os.environ, RANDFILE=os.path.join(d, ".rnd")))

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        j = lambda n: os.path.join(d, n)  # noqa: E731
        ossl("req", "-x509", *ec, "-keyout", j("ca.key"), "-out", j("ca.crt"), "-days", "2",
             "-subj", "/CN=podfence-e2e-ca")
        with open(j("server.ext"), "w") as f:
            f.write(f"subjectAltName=IP:{NODE_NET}.254,IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth\n")
        with open(j("client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        for name, cn in (("server", "apiserver"), ("client", "podfenced")):
            ossl("req", *ec, "-keyout", j(name + ".key"), "-out", j(name + ".csr"), "-subj", "/CN=" + cn)
            ossl("x509", "-req", "-in", j(name + ".csr"), "-CA", j("ca.crt"), "-CAkey", j("ca.key"),
                 "-CAcreateserial", "-out", j(name + ".crt"), "-days", "2", "-extfile", j(name + ".ext"))

    def start_apiserver(self, extra=()):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                              "apiserver.py")
        self.api_tls = os.path.join(self.tmp, "tls")
        self.api_token = f"e2e-token-{self.run_id}"
        self.api_data = os.path.join(self.tmp, "apiserver-state.json")
        if not os.path.exists(os.path.join(self.api_tls, "client.crt")):
            self.gen_tls(self.api_tls)
        args = [sys.executable, os.path.normpath(script), "--bind", f"{NODE_NET}.254", "--port", "6443",
                "--tls-dir", self.api_tls, "--token", self.api_token, "--data", self.api_data,
                "--bookmark-interval", "5"] + list(extra)
        p = subprocess.Popen(["ip", "netns", "exec", self.cp] + args, stdout=subprocess.PIPE,
                             stderr=open(os.path.join(self.tmp, "apiserver.log"), "ab"),
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        line = p.stdout.readline().decode().strip()
        if not line.startswith("READY"):
            raise E2EError(f"test API server did not start: {line!r}")
        self.api = p
        self.api_url = f"https://{NODE_NET}.254:6443"
        self.kube = Kube(self.api_url, self.api_token, os.path.join(self.api_tls, "ca.crt"))
        return p

    def stop_apiserver(self, sig=signal.SIGTERM):
        self.kill(self.api, sig)

    def admin(self, path, body=None):
        k = Kube(self.api_url, None, os.path.join(self.api_tls, "ca.crt"))
        return k.request("POST" if body is not None else "GET", "/_admin/" + path, body)

    def kubeconfig(self, node):
        path = os.path.join(node.dir, "kubeconfig")
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: {self.api_url}
    certificate-authority: {os.path.join(self.api_tls, "ca.crt")}
users:
- name: e2e
  user:
    token: {self.api_token}
contexts:
- name: e2e
  context: {{cluster: e2e, user: e2e}}
current-context: e2e
""")
        return path

    def create_node_objects(self):
        for node in self.nodes:
            self.kube.create("nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
                "spec": {"podCIDR": node.pod_cidr,
                         "podCIDRs": [node.pod_cidr] + ([node.pod_cidr6] if self.dual_stack else [])},
                "status": {"addresses": [{"type": "InternalIP", "address": node.addr}]}})

    # ---- podfenced ----
    def start_podfenced(self, node, extra=()):
        args = [self.binary("podfenced", "controller/daemon"),
                "--kubeconfig", self.kubeconfig(node), "--node-name", node.name,
                "--socket", node.socket, "--state-dir", node.state_dir,
                "--metrics-address", "127.0.0.1:9477"] + list(extra)
        node.daemon = self.spawn(args, ns=node.netns, log=node.daemon_log)
        return node.daemon

    def ctl(self, node, *args, check=True, timeout=30):
        exe = self.binary("podfencectl", "controller/ctl")
        return sh([exe, "--socket", node.socket] + list(args), ns=node.netns, check=check,
                  timeout=timeout)

    def status(self, node):
        p = self.ctl(node, "--json", "status", check=False)
        if p.returncode != 0:
            return None
        try:
            return json.loads(p.stdout)
        except ValueError:
            return None

    def wait_ready(self, node, timeout=30.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if node.daemon is not None and node.daemon.poll() is not None:
                raise E2EError(f"podfenced on {node.name} exited ({node.daemon.returncode}); "
                               f"log: {self.tail(node.daemon_log)}")
            st = self.status(node)
            if st and st.get("ready"):
                return time.monotonic() - t0
            time.sleep(0.1)
        raise E2EError(f"podfenced on {node.name} not ready after {timeout}s; "
                       f"log: {self.tail(node.daemon_log)}")

    def stop_daemons_and_scan(self):
        """Stops every podfenced gracefully (so a sanitizer build runs its exit checks) and
        returns the sanitizer reports found in their logs."""
        found = []
        for node in self.nodes:
            if node.daemon is not None:
                self.kill(node.daemon, signal.SIGTERM, wait=15)
            try:
                with open(node.daemon_log, errors="replace") as f:
                    for line in f:
                        if ("Sanitizer" in line and "ERROR" in line) or "runtime error:" in line:
                            found.append(f"{node.name}: {line.strip()[:300]}")
            except OSError:
                pass
        return found

    @staticmethod
    def tail(path, n=25):
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    # ---- CNI ----
    def cni_config(self, node):
        ranges = [[{"subnet": node.pod_cidr}]]
        if self.dual_stack:
            ranges.append([{"subnet": node.pod_cidr6}])
        ipam = {"type": "host-local", "ranges": ranges, "dataDir": node.ipam_dir}
        if self.plugin == "ptp":
            # ptp takes the pod's routes from IPAM; podfence adds its own default route.
            ipam["routes"] = [{"dst": "0.0.0.0/0"}]
            return {"cniVersion": "1.0.0", "name": "e2e", "type": "ptp", "ipMasq": False,
                    "ipam": ipam}
        return {"cniVersion": "1.0.0", "name": "e2e", "type": "podfence",
                "socket": node.socket, "ipam": ipam}

    def cni(self, command, pod, config=None, timeout=60):
        node = pod.node
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": pod.container_id,
            "CNI_NETNS": f"/run/netns/{pod.netns}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": f"{self.cni_bin}:/usr/lib/cni",
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={pod.ns};K8S_POD_NAME={pod.name};"
                        f"K8S_POD_INFRA_CONTAINER_ID={pod.container_id};K8S_POD_UID={pod.uid}",
        }
        conf = json.dumps(config or pod.cni_conf or self.cni_config(node))
        exe = os.path.join(self.cni_bin, self.plugin)
        p = sh([exe], ns=node.netns, input=conf, check=False, timeout=timeout, env=env)
        return p

    # ---- pods ----
    def alloc_cluster_ip(self):
        with self.lock:
            n = self.svc_next
            self.svc_next += 1
        return str(SERVICE_NET.network_address + n)

    def pod_object(self, pod):
        containers = []
        for port, proto in pod.ports:
            containers.append({"name": f"cont-{port}-{proto}", "image": "pfagent",
                               "ports": [{"name": f"serve-{port}-{proto}", "containerPort": port,
                                          "protocol": proto.upper()}]})
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod.name, "namespace": pod.ns, "labels": pod.labels},
                "spec": {"nodeName": pod.node.name, "containers": containers}}

    def add_pod(self, ns, name, node, labels, ports=PORTS, serve=True, service=True, cni_conf=None):
        """Creates the pod as the scheduler + kubelet + runtime would; returns Pod."""
        pod = Pod(ns, name, node, labels, list(ports))
        pod.cni_conf = cni_conf
        with self.lock:
            self.pods[pod.key] = pod
        pod.uid = f"uid-{self.run_id}-{ns}-{name}"
        if self.kube:
            obj = self.kube.create("pods", self.pod_object(pod))
            pod.uid = obj.get("metadata", {}).get("uid") or pod.uid
        pod.container_id = f"c{abs(hash((self.run_id, ns, name, time.time()))):x}"[:32]
        pod.netns = self.netns_add(f"{self.prefix}-p-{ns[-12:]}-{name}")
        r = self.cni("ADD", pod)
        if r.returncode != 0:
            # As the kubelet does: tear the sandbox down; the caller may retry.
            self.discard_pod(pod)
            raise E2EError(f"CNI ADD {pod.key} failed ({r.returncode}): {r.stdout.strip()} "
                           f"{r.stderr.strip()}")
        result = json.loads(r.stdout)
        ips = [i["address"].split("/")[0] for i in result.get("ips", [])]
        if not ips:
            raise E2EError(f"CNI ADD {pod.key}: no IPs in result {r.stdout}")
        pod.ip = next((ip for ip in ips if ":" not in ip), ips[0])
        pod.ip6 = next((ip for ip in ips if ":" in ip), None)
        if self.dual_stack and not pod.ip6:
            raise E2EError(f"CNI ADD {pod.key}: no IPv6 address in a dual-stack result {r.stdout}")
        if self.kube:
            def status(o):
                o["status"] = {"phase": "Running", "podIP": pod.ip,
                               "podIPs": [{"ip": ip} for ip in ips]}
            self.kube.modify("pods", ns, name, status, sub="status")
        if service:
            pod.cluster_ip = self.alloc_cluster_ip()
            for n in self.nodes:
                n.sh(["nft", "add", "element", "ip", "kube-proxy-emu", "svc",
                      f"{{ {pod.cluster_ip} : {pod.ip} }}"])
        if serve:
            self.start_server(pod)
        return pod

    def discard_pod(self, pod):
        """Removes a pod whose ADD failed: its API object and namespace, nothing else."""
        if self.kube:
            self.kube.delete("pods", pod.ns, pod.name)
        sh(["ip", "netns", "del", pod.netns], check=False)
        with self.lock:
            if pod.netns in self.created_netns:
                self.created_netns.remove(pod.netns)
            self.pods.pop(pod.key, None)

    def controller_ipam_config(self, node, ips):
        """podfence with controller IPAM (no ipam section) and the runtime's ips capability."""
        return {"cniVersion": "1.1.0", "name": "e2e", "type": "podfence", "socket": node.socket,
                "capabilities": {"ips": True}, "runtimeConfig": {"ips": list(ips)}}

    def try_add_fail(self, ns, name, node, config):
        """Runs an ADD that must fail; returns the CNI error code it reported (or raises if it
        succeeded). Checks the pod namespace is left with nothing but lo."""
        pod = Pod(ns, name, node, {"app": "fault"}, [(80, "tcp")])
        pod.uid = f"uid-{self.run_id}-{ns}-{name}"
        if self.kube:
            self.kube.create("pods", self.pod_object(pod))
        pod.container_id = f"f{abs(hash((self.run_id, ns, name, time.time()))):x}"[:32]
        pod.netns = self.netns_add(f"{self.prefix}-p-{ns[-12:]}-{name}")
        try:
            r = self.cni("ADD", pod, config=config)
            if r.returncode == 0:
                self.cni("DEL", pod, config=config)
                raise E2EError(f"ADD {pod.key} with {config.get('socket')} succeeded; it must fail")
            try:
                code = json.loads(r.stdout).get("code")
            except ValueError:
                code = None
            links = sorted(link["ifname"] for link in
                           json.loads(sh(["ip", "-j", "link", "show"], ns=pod.netns).stdout))
            if links != ["lo"]:
                raise E2EError(f"failed ADD left links in the pod: {links}")
            return code
        finally:
            self.discard_pod(pod)

    def start_server(self, pod):
        args = [self.pfagent, "serve", "--id", pod.key]
        tcp = ",".join(str(p) for p, pr in pod.ports if pr == "tcp")
        udp = ",".join(str(p) for p, pr in pod.ports if pr == "udp")
        if tcp:
            args += ["--tcp", tcp]
        if udp:
            args += ["--udp", udp]
        p = subprocess.Popen(["ip", "netns", "exec", pod.netns] + args, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        line = p.stdout.readline().decode().strip()
        if line != "ready":
            raise E2EError(f"pfagent serve in {pod.key} did not start")
        pod.server = p

    def delete_pod(self, pod, api=True):
        if pod.server:
            self.kill(pod.server, signal.SIGKILL)
        if self.kube and api:
            self.kube.delete("pods", pod.ns, pod.name)
        # The kubelet retries a failed DEL until it succeeds (DEL is idempotent);
        # a controller killed mid-request answers "try again later" (11).
        for attempt in range(40):
            r = self.cni("DEL", pod)
            if r.returncode == 0:
                break
            try:
                code = json.loads(r.stdout).get("code")
            except (ValueError, AttributeError):
                code = None
            if code != 11 or attempt == 39:
                raise E2EError(f"CNI DEL {pod.key} failed: {r.stdout} {r.stderr}")
            time.sleep(0.5)
        if pod.cluster_ip and pod.ip:
            for n in self.nodes:
                n.sh(["nft", "delete", "element", "ip", "kube-proxy-emu", "svc",
                      f"{{ {pod.cluster_ip} }}"], check=False)
        sh(["ip", "netns", "del", pod.netns], check=False)
        with self.lock:
            if pod.netns in self.created_netns:
                self.created_netns.remove(pod.netns)
            self.pods.pop(pod.key, None)

    # ---- probing ----
    def matrix(self, pairs, port, proto, timeout_ms=800, parallel=96):
        """Probes every (client, server) pair at once: through the server's ClusterIP, or
        with probe_family 6 to its IPv6 address. Returns {(client.key, server.key): bool}."""
        lines = []
        for i, (c, s) in enumerate(pairs):
            dst = s.ip6 if self.probe_family == 6 else s.cluster_ip
            lines.append(f"{i} {c.netns} {dst} {port} {proto}")
        if not lines:
            return {}
        p = sh([self.pfagent, "matrix", "--parallel", str(parallel), "--timeout-ms",
                str(timeout_ms)], input="\n".join(lines) + "\n", timeout=120)
        out = {}
        for line in p.stdout.splitlines():
            idx, ok = line.split()
            c, s = pairs[int(idx)]
            out[(c.key, s.key)] = ok == "1"
        return out

    # ---- node state ----
    def node_links(self, node):
        p = node.sh(["ip", "-j", "link", "show"])
        return sorted(link["ifname"] for link in json.loads(p.stdout))

    def node_addrs(self, node):
        p = node.sh(["ip", "-j", "addr", "show"])
        return sorted(f"{i['ifname']} {a['local']}/{a['prefixlen']}" for i in json.loads(p.stdout)
                      for a in i.get("addr_info", []) if a.get("scope") != "link")

    def node_routes(self, node):
        p = node.sh(["ip", "-j", "route", "show"])
        return sorted(r["dst"] for r in json.loads(p.stdout))

    def ipam_leases(self, node):
        d = os.path.join(node.ipam_dir, "e2e")
        if not os.path.isdir(d):
            return []
        return sorted(f for f in os.listdir(d) if f[0].isdigit() or ":" in f)

    def registrations(self, node):
        """The controller's local pods as (namespace/name, containerId), or [] without one."""
        if not self.use_podfenced or node.daemon is None:
            return []
        p = self.ctl(node, "--json", "pods", check=False)
        if p.returncode != 0:
            return [f"podfencectl pods failed: {p.stderr.strip()}"]
        doc = json.loads(p.stdout)
        pods = doc.get("pods", doc) if isinstance(doc, dict) else doc
        return sorted(f"{x.get('namespace')}/{x.get('name')} {x.get('containerId')}" for x in pods)

    def verify_plans(self):
        """Each controller's own verdict that the kernel equals its plan: restarted, it
        reads the kernel back and its first full sync must send no mutating message."""
        out = []
        for node in self.nodes:
            if not self.use_podfenced or node.daemon is None:
                continue
            self.kill(node.daemon, signal.SIGTERM)
            self.start_podfenced(node)
            self.wait_ready(node)
            st = self.status(node) or {}
            n = st.get("nftMutatingMessages")
            if n is None:
                out.append(f"{node.name}: status has no nftMutatingMessages")
            elif n != 0:
                out.append(f"{node.name}: restart sent {n} mutating messages: kernel != plan")
        return out

    def nft_json(self, node, family="inet", table="podfence"):
        p = node.sh(["nft", "-j", "list", "table", family, table], check=False)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)


def truth_table(title, keys, cells, short):
    """Upstream-style table: rows are clients, columns servers; '.' true, 'X' false."""
    names = [short(k) for k in keys]
    w = max(len(n) for n in names) + 1
    out = [title, " " * w + " ".join(n.rjust(3) for n in names)]
    for r in keys:
        row = []
        for c in keys:
            if r == c:
                row.append("-".rjust(3))
            else:
                row.append(("." if cells[(r, c)] else "X").rjust(3))
        out.append(short(r).ljust(w) + " ".join(row))
    return "\n".join(out)
