#!/usr/bin/env bash
# make demo: berth's main job on a fresh Debian machine, end to end.
#
#   1. a Python base image: pulled (python:3.11-slim) where a registry is
#      reachable, else made from Debian packages (scripts/mkbase.sh) and
#      imported,
#   2. berth build of examples/flask-hello from its Dockerfile,
#   3. berth run -d -p 8080:80 --memory 256m, then the app's answer on
#      localhost, berth ps, berth stats --no-stream and berth logs,
#   4. push to berth's embedded registry, remove, pull back, verify,
#   5. stop and remove the container.
# Everything lives in a temporary --root that is removed at the end
# (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH=${BERTH:-$PWD/bin/berth}
DEMO_ROOT=${DEMO_ROOT:-$(mktemp -d /tmp/berth-demo.XXXXXX)}
CACHE=${BERTH_TEST_CACHE:-/var/cache/berth-test}
[ "$(id -u)" -eq 0 ] || {
	echo "demo: berth runs containers as root; run make demo as root" >&2
	exit 1
}
HOST_PORT=${DEMO_HTTP_PORT:-8080}
REG_PORT=${DEMO_REGISTRY_PORT:-5055}
b() { echo "+ berth $*" >&2; "$BERTH" --root "$DEMO_ROOT" "$@"; }

cleanup() {
	set +e
	[ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
	if [ -z "${KEEP:-}" ]; then
		# Containers, the demo root's bridge and firewall rules, and the
		# root itself.
		"$BERTH" --root "$DEMO_ROOT" system reset -f >/dev/null 2>&1 || rm -rf "$DEMO_ROOT"
	fi
	true
}
trap cleanup EXIT

echo "== 1. a Python base image"
if "$BERTH" --root "$DEMO_ROOT" pull -q python:3.11-slim >/dev/null 2>&1; then
	base=python:3.11-slim
	echo "pulled python:3.11-slim"
else
	base=berth-demo/python:3.11
	tarball="$CACHE/demo-python.tar.gz"
	mkdir -p "$CACHE"
	[ -s "$tarball" ] || scripts/mkbase.sh --variant python "$tarball"
	b import --change 'CMD ["python3"]' "$tarball" "$base"
fi

echo "== 2. build examples/flask-hello from its Dockerfile"
b build -t flask-hello:latest --build-arg "BASE=$base" examples/flask-hello
b images

echo "== 3. run it with a published port and a memory limit"
b run -d --name demo-web -p "$HOST_PORT:80" --memory 256m flask-hello:latest
answer=
for _ in $(seq 100); do
	answer=$(curl -fsS "http://127.0.0.1:$HOST_PORT/" 2>/dev/null) && break
	sleep 0.1
done
echo "curl http://127.0.0.1:$HOST_PORT/ -> $answer"
[ "$answer" = "Hello, World!" ] || {
	echo "demo: the app did not answer" >&2
	b logs demo-web >&2
	exit 1
}
b ps
b stats --no-stream demo-web
b logs --tail 5 demo-web

echo "== 4. push to berth's embedded registry, remove, pull back"
"$BERTH" --root "$DEMO_ROOT" registry serve --addr "127.0.0.1:$REG_PORT" --root "$DEMO_ROOT/registry" 2>/dev/null &
REG_PID=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
ref="127.0.0.1:$REG_PORT/demo/flask-hello:latest"
b tag flask-hello:latest "$ref"
b push "$ref"
b rmi "$ref"
b pull "$ref"
b image verify

echo "== 5. stop and remove"
b stop -t 2 demo-web
b rm demo-web
echo "demo: done"
