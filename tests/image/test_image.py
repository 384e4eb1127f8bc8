#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""image.run: scripts/image.sh builds the image from this build's binaries;
the image runs under podman from its OCI archive with a read-only root
filesystem, every capability dropped and no network: `podfenced --version`
answers and `install-cni` installs the plugin and conflist. The image has no
shell, only root-owned read-only files, a non-root default user, and its SBOM
names every Debian package it took files from, with the installed version.

Everything (buildah's and podman's storage included) lives in a temporary
directory removed at the end: the host's container storage is not touched."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = sys.argv.pop(1) if len(sys.argv) > 1 else None


def run(cmd, env, check=True, **kw):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


class Image(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pf-image-")
        cls.env = dict(os.environ)
        conf = os.path.join(cls.tmp, "storage.conf")
        with open(conf, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{cls.tmp}/graph"\nrunroot = "{cls.tmp}/run"\n')
        cls.env["CONTAINERS_STORAGE_CONF"] = conf
        out = os.path.join(cls.tmp, "out")
        r = run([os.path.join(TOP, "scripts", "image.sh"), "--build-dir", BUILD, "--out", out,
                 "--tag", "localhost/podfence-test:ci"], dict(os.environ))
        cls.report = r.stdout
        names = os.listdir(out)
        cls.archive = os.path.join(out, next(n for n in names if n.endswith(".oci.tar")))
        cls.sbom = os.path.join(out, next(n for n in names if n.endswith(".spdx.json")))
        run(["podman", "load", "-q", "-i", cls.archive], cls.env)
        cls.image = "localhost/podfence-test:ci"

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["podman", "rmi", "-af"], env=cls.env, capture_output=True)
        subprocess.run(["podman", "system", "reset", "-f"], env=cls.env, capture_output=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def podman_run(self, *args, mounts=(), user=None, check=True):
        # --ulimit nofile, nproc: podman's defaults may exceed what the
        # calling process may raise it to (crun's setrlimit then fails).
        # runc: crun refuses this machine's hybrid cgroup layout.
        cmd = ["podman", "run", "--rm", "--runtime", "runc", "--read-only", "--cap-drop=ALL", "--network=none",
               "--security-opt=no-new-privileges", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024"]
        if user is not None:
            cmd += ["--user", user]
        for m in mounts:
            cmd += ["-v", m]
        # Sanitizer builds: no leak check inside the container (ptrace is not there).
        cmd += ["-e", "ASAN_OPTIONS=detect_leaks=0", self.image] + list(args)
        return run(cmd, self.env, check=check)

    def test_version(self):
        r = self.podman_run("--version")
        self.assertRegex(r.stdout + r.stderr, r"podfenced \d+\.\d+\.\d+")

    def test_install_cni(self):
        host = tempfile.mkdtemp(dir=self.tmp)
        for d in ("bin", "net.d", "conf"):
            os.mkdir(os.path.join(host, d))
        with open(os.path.join(host, "conf", "10-podfence.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": "podfence",
                       "plugins": [{"type": "podfence", "ipam": {"type": "podfence"}}]}, f)
        self.podman_run("install-cni", "/opt/podfence/podfence", "/host/bin", "/etc/podfence/10-podfence.conflist",
                        "/host/net.d", user="0",
                        mounts=[f"{host}/bin:/host/bin", f"{host}/net.d:/host/net.d",
                                f"{host}/conf:/etc/podfence:ro"])
        plugin = os.path.join(host, "bin", "podfence")
        self.assertTrue(os.access(plugin, os.X_OK))
        v = run([plugin], dict(os.environ, CNI_COMMAND="VERSION"), check=False)
        self.assertIn("supportedVersions", v.stdout)
        self.assertEqual(os.listdir(os.path.join(host, "net.d")), ["10-podfence.conflist"])

    def test_read_only_root_refuses_writes(self):
        # A negative control: the same image is really read-only and capless.
        r = self.podman_run("install-cni", "/opt/podfence/podfence", "/usr/bin", "/etc/passwd", "/etc", user="0",
                            check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_no_shell_and_layout(self):
        r = self.podman_run("x", check=False)
        self.assertNotEqual(r.returncode, 0)
        for sh in ("/bin/sh", "/usr/bin/sh", "/bin/bash"):
            r = run(["podman", "run", "--rm", "--runtime", "runc", "--read-only", "--network=none", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024", "--entrypoint", sh,
                     self.image, "-c", "true"], self.env, check=False)
            self.assertNotEqual(r.returncode, 0, sh)
        cfg = json.loads(run(["podman", "image", "inspect", self.image], self.env).stdout)[0]
        self.assertEqual(cfg["Config"]["User"], "65532:65532")
        self.assertEqual(cfg["Config"]["Entrypoint"], ["/usr/bin/podfenced"])
        # Root-owned, nothing writable by the (non-root) default user.
        with tarfile.open(self.archive) as t:
            index = json.load(t.extractfile("index.json"))
            man = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
            for layer in man["layers"]:
                blob = t.extractfile("blobs/sha256/" + layer["digest"].split(":")[1])
                with tarfile.open(fileobj=blob, mode="r:*") as lt:
                    for m in lt.getmembers():
                        self.assertEqual((m.uid, m.gid), (0, 0), m.name)
                        if m.isfile():
                            self.assertEqual(m.mode & 0o222, 0, m.name)
                        self.assertNotIn(os.path.basename(m.name), ("sh", "bash", "dash", "busybox"), m.name)
        self.assertIn("digest: sha256:", self.report)
        self.assertIn("pin:", self.report)

    def test_sbom(self):
        doc = json.load(open(self.sbom))
        self.assertEqual(doc["spdxVersion"], "SPDX-2.3")
        pkgs = {p["name"]: p for p in doc["packages"]}
        for name in ("libc6", "libnftnl11", "libmnl0", "libjansson4", "libcurl4", "libyaml-0-2", "libmicrohttpd12"):
            self.assertIn(name, pkgs)
            ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True,
                                 text=True).stdout
            self.assertEqual(pkgs[name]["versionInfo"], ver, name)
            purl = pkgs[name]["externalRefs"][0]["referenceLocator"]
            self.assertTrue(purl.startswith(f"pkg:deb/debian/{name}@{ver}"), purl)
        self.assertIn("podfence", pkgs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
