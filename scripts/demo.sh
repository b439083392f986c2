#!/usr/bin/env bash
# make demo: berth's main job on a fresh Debian machine, end to end.
#
# Today (image store and registry) it:
#   1. makes a Python base image from Debian packages (no registry needed),
#   2. imports it into berth with the Flask example baked in,
#   3. serves berth's embedded registry on loopback,
#   4. pushes the image to it, deletes it locally, pulls it back,
#   5. verifies the store and shows the image.
# Running the app (berth run -p 8080:80) arrives with the runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH=${BERTH:-$PWD/bin/berth}
DEMO_ROOT=${DEMO_ROOT:-$(mktemp -d /tmp/berth-demo.XXXXXX)}
CACHE=${BERTH_TEST_CACHE:-/var/cache/berth-test}
[ "$(id -u)" -eq 0 ] || CACHE=${BERTH_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-test}
PORT=${DEMO_PORT:-5055}
b() { echo "+ berth $*" >&2; "$BERTH" --root "$DEMO_ROOT" "$@"; }

cleanup() {
	[ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
	[ -z "${KEEP:-}" ] && rm -rf "$DEMO_ROOT"
	true
}
trap cleanup EXIT

echo "== 1. a Python base image from Debian packages"
base="$CACHE/demo-python.tar.gz"  # built once, reused
mkdir -p "$CACHE"
if [ ! -s "$base" ]; then
	scripts/mkbase.sh --variant python "$base"
fi

echo "== 2. import it with the Flask example app"
work=$(mktemp -d)
trap 'rm -rf "$work"; cleanup' EXIT
mkdir -p "$work/rootfs"
tar -xzf "$base" -C "$work/rootfs"
mkdir -p "$work/rootfs/app"
cp examples/flask-hello/app.py "$work/rootfs/app/"
tar -C "$work/rootfs" -czf "$work/flask.tar.gz" .
b import --change 'WORKDIR /app' --change 'EXPOSE 80' --change 'CMD ["python3","app.py"]' \
	"$work/flask.tar.gz" berth-demo/flask-hello:latest
b images

echo "== 3. berth's embedded registry on 127.0.0.1:$PORT"
"$BERTH" --root "$DEMO_ROOT" registry serve --addr "127.0.0.1:$PORT" --root "$DEMO_ROOT/registry" &
REG_PID=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== 4. push, remove, pull"
b tag berth-demo/flask-hello:latest "127.0.0.1:$PORT/demo/flask-hello:latest"
b push "127.0.0.1:$PORT/demo/flask-hello:latest"
b rmi "127.0.0.1:$PORT/demo/flask-hello:latest" berth-demo/flask-hello:latest
b pull "127.0.0.1:$PORT/demo/flask-hello:latest"

echo "== 5. the store is intact"
b image verify
b images
b inspect -f 'Cmd={{json .Config.Cmd}} WorkingDir={{.Config.WorkingDir}} Ports={{json .Config.ExposedPorts}}' \
	"127.0.0.1:$PORT/demo/flask-hello:latest"
echo "demo: done (the next step, berth run -p 8080:80, comes with the runtime)"
