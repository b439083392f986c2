#!/usr/bin/env bash
# Installs the Debian packages berth's build, tests and demo use. As root it
# installs what is missing; otherwise it only lists it.
set -euo pipefail

pkgs=(
  gcc libc6-dev libseccomp-dev pkg-config  # cgo build (libcontainer, seccomp)
  iptables nftables iproute2               # container networking
  mmdebstrap debootstrap                   # base images from Debian packages
  docker-registry skopeo umoci             # peers for interoperability tests
  docker.io busybox-static                 # test/interop: private dockerd, tiny rootfs
  curl ca-certificates hyperfine wrk buildah runc  # benchmarks (bench/)
  prometheus chromium                      # monitoring tests: a real scraper, the dashboard in a browser
  python3 python3-flask python3-gunicorn python3-fastapi python3-uvicorn  # the local wheel index
  python3-django python3-setuptools python3-wheel                          # (internal/testutil/pyindex.go)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; missing Debian packages (tests that need them skip): ${missing[*]}" >&2
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/berth-deps.log 2>&1; then
  apt-get update >>/tmp/berth-deps.log 2>&1
  apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/berth-deps.log 2>&1 || {
    echo "deps: apt-get install failed; see /tmp/berth-deps.log" >&2
    tail -20 /tmp/berth-deps.log >&2
    exit 1
  }
fi
