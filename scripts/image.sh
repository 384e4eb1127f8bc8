#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the podfence image without a registry: FROM scratch, holding the
# three binaries and exactly the shared libraries they load (ldd), no shell,
# no package manager, files owned by root and not writable, default user
# 65532. Writes an OCI archive and an SPDX 2.3 JSON SBOM naming the Debian
# packages whose files the image contains, with versions (Trivy and Grype read
# its purls), and prints the manifest digest to pin.
#
#   scripts/image.sh [--build-dir DIR] [--out DIR] [--tag NAME:TAG]
#
# --build-dir: a configured CMake build whose binaries to use (built here if
# missing); default build-image (a Release build made by this script).
# buildah keeps its layers in a private vfs store under the output directory,
# removed on exit: nothing is left in the host's container storage.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=""
out="$top/image"
version=$(sed -n 's/^project(podfence VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
tag="ghcr.io/podfence/podfence:$version"

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "image.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
for tool in buildah python3 dpkg-query ldd; do
  command -v "$tool" >/dev/null || { echo "image.sh: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done
if [ -z "$build" ]; then
  build="$top/build-image"
  cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPODFENCE_WERROR=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target podfenced podfencectl podfence >/dev/null

mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
export CONTAINERS_STORAGE_CONF="$work/storage.conf"
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$work/graph"
runroot = "$work/run"
EOF
ctr=""
cleanup() {
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  buildah rmi --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

root="$work/rootfs"
mkdir -p "$root/usr/bin" "$root/opt/podfence" "$root/etc/podfence" "$root/run/podfence" \
  "$root/var/lib/podfence" "$root/tmp"
install -m 0555 "$build/controller/daemon/podfenced" "$root/usr/bin/podfenced"
install -m 0555 "$build/controller/ctl/podfencectl" "$root/usr/bin/podfencectl"
install -m 0555 "$build/plugin/podfence" "$root/opt/podfence/podfence"
chmod 1777 "$root/tmp"
# Names for the default user, so logs and tools show one.
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chmod 0444 "$root/etc/passwd" "$root/etc/group"

# Exactly what the loader maps: every resolved library plus the loader itself.
libs="$work/libs.txt"
for b in "$root/usr/bin/podfenced" "$root/usr/bin/podfencectl" "$root/opt/podfence/podfence"; do
  ldd "$b" | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}'
done | sort -u >"$libs"
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
  chmod 0555 "$root$lib" # the loader must be executable; libraries may be
done <"$libs"
# ldd names the loader by its ABI path (/lib64/...): keep that path working.
if [ -e "$root/lib64" ] && [ ! -e "$root/lib64/ld-linux-x86-64.so.2" ] && [ -e /lib64/ld-linux-x86-64.so.2 ]; then
  cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
fi

python3 - "$root" "$libs" "$version" "$tag" "$out/podfence-$version.spdx.json" <<'PY'
"""SPDX 2.3 JSON: podfence itself plus one package per Debian package that
owns a file copied into the image (found with dpkg -S, under both the /usr
and the pre-merged-/usr path), with version and purl."""
import datetime, hashlib, json, os, subprocess, sys, uuid
root, libs, version, tag, dest = sys.argv[1:6]
arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
owners = {}
for lib in open(libs).read().split():
    real = os.path.realpath(lib)
    cands = {lib, real}
    for p in list(cands):
        cands.add(p[4:] if p.startswith("/usr/") else "/usr" + p)
    pkg = None
    for c in sorted(cands):
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            pkg = r.stdout.split(":")[0].strip()
            break
    if pkg is None:
        sys.exit(f"image.sh: no Debian package owns {lib}; refusing to ship an unaccounted file")
    owners.setdefault(pkg, []).append(lib)
pkgs = []
for name in sorted(owners):
    ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True).stdout.strip()
    base = name.split(":")[0]
    pkgs.append({
        "SPDXID": "SPDXRef-deb-" + base.replace("+", "plus").replace(".", "-"),
        "name": base,
        "versionInfo": ver,
        "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "comment": "files in the image: " + ", ".join(sorted(owners[name])),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": f"pkg:deb/debian/{base}@{ver}?arch={arch}&distro=debian-12",
        }],
    })
def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()
bins = ["usr/bin/podfenced", "usr/bin/podfencectl", "opt/podfence/podfence"]
doc = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": f"podfence-{version}",
    "documentNamespace": f"https://podfence.io/spdx/podfence-{version}-{uuid.uuid4()}",
    "creationInfo": {
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "creators": ["Tool: podfence scripts/image.sh"],
    },
    "packages": [{
        "SPDXID": "SPDXRef-podfence",
        "name": "podfence",
        "versionInfo": version,
        "supplier": "Organization: podfence",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseDeclared": "Apache-2.0",
        "comment": "image " + tag + "; binaries: " + ", ".join(
            f"/{b} sha256:{sha256(os.path.join(root, b))}" for b in bins),
    }] + pkgs,
    "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                       "relatedSpdxElement": "SPDXRef-podfence"}] + [
        {"spdxElementId": "SPDXRef-podfence", "relationshipType": "DEPENDS_ON",
         "relatedSpdxElement": p["SPDXID"]} for p in pkgs],
}
with open(dest, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
PY

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config --entrypoint '["/usr/bin/podfenced"]' --cmd '' --user 65532:65532 \
  --workingdir / --env PATH=/usr/bin \
  --label "org.opencontainers.image.title=podfence" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.licenses=Apache-2.0" "$ctr"
archive="$out/podfence-$version.oci.tar"
rm -f "$archive"
buildah commit --quiet --format oci "$ctr" "oci-archive:$archive:$tag" >/dev/null
# The manifest digest: what a registry serves for this image once pushed as
# is (skopeo copy / podman push keep OCI manifests byte for byte).
digest=$(tar -xOf "$archive" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
size=$(du -b "$archive" | cut -f1)
echo "image: $archive ($((size / 1024)) KiB)"
echo "sbom:  $out/podfence-$version.spdx.json"
echo "tag:   $tag"
echo "digest: $digest"
echo "pin:   image: ${tag%:*}@$digest"
