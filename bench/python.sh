#!/usr/bin/env bash
# python.sh measures zero-config "berth build" (no Dockerfile: berth detects
# the Python project and generates one) on the Flask sample project
# (pkg/pyproject/testdata/flask-requirements) and prints:
#
#   a. the rebuild after a code-only change (target < 1 s; the median of N
#      rebuilds, each after appending a comment to app.py);
#   b. the image size against the same app built from a single-stage
#      Dockerfile in the style of "docker init" (pip install into the base
#      image's Python, then COPY . .), on the same base, built with berth;
#   c. a cold zero-config build (--no-cache) against "docker build
#      --no-cache" of the files "berth init" generates for the project
#      (the same Dockerfile and .dockerignore; same base, same index), as a
#      ratio berth/docker. Without buildx, docker's classic builder does not
#      know RUN --mount, so docker gets the Dockerfile with the pip cache
#      mounts removed (they cannot speed up a --no-cache build of a fresh
#      engine); a Dockerfile that needs BuildKit otherwise (heredocs) skips
#      the docker half with a message, as does a missing docker engine.
#
# Usage: bench/python.sh [--runs N] [--cold-runs N]
#
#   --runs N        rebuilds timed for (a) (default 5)
#   --cold-runs N   cold builds timed for (c), per tool (default 3)
#
# Offline: the base image is the python base tarball of scripts/mkbase.sh
# (cached like the tests' base images in $BERTH_TEST_CACHE or
# /var/cache/berth-test); the packages come from a loopback PEP 503 index of
# the wheels internal/testutil.PythonIndex repackages from Debian's Python
# packages (built with "go test" when not cached yet; needs the Debian
# packages listed in internal/testutil/pyindex.go), served by python3's
# http.server. docker is a private dockerd (scripts/docker-engine.sh); its
# builds use --network host to reach the index. Needs root. Everything the
# script starts is stopped and its work directory removed on exit.
set -euo pipefail

prog=python.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

runs=5
cold_runs=3
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=${2:?--runs needs a number}; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	--cold-runs) cold_runs=${2:?--cold-runs needs a number}; shift 2 ;;
	--cold-runs=*) cold_runs=${1#--cold-runs=}; shift ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
for v in runs cold_runs; do
	case "${!v}" in '' | *[!0-9]* | 0) die "--${v/_/-} must be a positive number, not '${!v}'" ;; esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (it builds and runs containers and may start a private dockerd)"
for tool in go python3 sha256sum awk; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install it)"
done

cd "$(dirname -- "$0")/.."
repo_root=$PWD
sample=$repo_root/pkg/pyproject/testdata/flask-requirements
[ -d "$sample" ] || die "sample project $sample not found"

work=$(mktemp -d /var/tmp/berth-bench-python.XXXXXX)
index_pid=
DOCKER_ENGINE_PID=
umount_under() {
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
	local status=$?
	trap - EXIT INT TERM ERR
	set +e
	log "cleaning up"
	if [ -n "${BERTH:-}" ] && [ -x "$BERTH" ]; then
		"$BERTH" --root "$BROOT" system reset -f >/dev/null 2>&1
	fi
	if [ -n "$DOCKER_ENGINE_PID" ]; then
		docker_engine_stop
	fi
	if [ -n "$index_pid" ]; then
		kill "$index_pid" 2>/dev/null
		wait "$index_pid" 2>/dev/null
	fi
	umount_under "$work"
	rm -rf --one-file-system -- "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# now_ns prints the time in nanoseconds; secs A B prints (B-A) in seconds.
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
# median prints the median of its arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# --- berth -------------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "building berth"
CGO_ENABLED=1 go build -trimpath -o "$work/bin/berth" ./cmd/berth || die "go build ./cmd/berth failed"
export BERTH=$work/bin/berth BROOT=$work/berth
b() { "$BERTH" --root "$BROOT" "$@"; }

# --- base tarball and package index ------------------------------------------
cache=${BERTH_TEST_CACHE:-/var/cache/berth-test}
mkdir -p "$cache"
base=$cache/base-python-$(sha256sum scripts/mkbase.sh | cut -c1-12).tar.gz
if [ ! -f "$base" ]; then
	log "building the python base tarball with scripts/mkbase.sh (a few minutes; cached in $cache)"
	(
		flock 9
		[ -f "$base" ] || bash scripts/mkbase.sh --variant python "$base"
	) 9>"$cache/base.lock" || die "scripts/mkbase.sh --variant python failed"
fi
newest_wheels() { find "$cache" -maxdepth 1 -type d -name 'pyindex-*' -printf '%T@ %p\n' 2>/dev/null | sort -g | tail -n 1 | cut -d' ' -f2-; }
wheels=$(newest_wheels)
if [ -z "$wheels" ]; then
	log "building the package index's wheels (go test -run TestPythonIndexPipInstall ./internal/testutil)"
	go test -count=1 -run TestPythonIndexPipInstall ./internal/testutil >"$work/wheels.log" 2>&1 ||
		die "building the wheels failed: $(tail -n 5 "$work/wheels.log")"
	wheels=$(newest_wheels)
	[ -n "$wheels" ] || die "no wheels in $cache after go test (skipped? $(grep -m1 SKIP "$work/wheels.log" || true))"
fi
# A PEP 503 tree: simple/NAME/index.html linking files/WHEEL#sha256=...
mkdir -p "$work/index/simple" "$work/index/files"
for whl in "$wheels"/*.whl; do
	f=${whl##*/}
	name=$(printf '%s' "${f%%-*}" | tr 'A-Z_.' 'a-z--')
	cp "$whl" "$work/index/files/$f"
	mkdir -p "$work/index/simple/$name"
	printf '<a href="../../files/%s#sha256=%s">%s</a><br/>\n' "$f" "$(sha256sum "$whl" | cut -d' ' -f1)" "$f" \
		>>"$work/index/simple/$name/index.html"
done
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/index" "$port" >"$work/index.log" 2>&1 &
index_pid=$!
for _ in $(seq 50); do
	python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/simple/flask/')" 2>/dev/null && break
	sleep 0.1
done
index=http://127.0.0.1:$port/simple
pipargs=(--build-arg "PIP_INDEX_URL=$index" --build-arg PIP_TRUSTED_HOST=127.0.0.1)

b import "$base" bench/python:latest >/dev/null
cp -a "$sample" "$work/flask"
app=$work/flask
zc() { b build --progress quiet --base bench/python:latest "${pipargs[@]}" "$@" "$app"; }

# --- b. image size against a single-stage Dockerfile ---------------------------
# What "docker init" writes for a pip project, on the same base: dependencies
# installed into the base image's Python (--break-system-packages, as the
# Debian base marks it externally managed; --ignore-installed so that the
# base's own Debian Flask does not stand in for the dependencies, as it
# would not on python:slim), then the code, a non-root user and the server.
# Built first, it also unpacks the base image's layers for the cold builds
# below (as "docker load" does for docker).
cat >"$work/Dockerfile.single" <<'EOF'
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG PIP_INDEX_URL
ARG PIP_TRUSTED_HOST
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
ARG UID=10001
RUN useradd --uid "${UID}" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin appuser
COPY requirements.txt ./
COPY requirements/ requirements/
RUN python3 -m pip install --no-cache-dir --break-system-packages --ignore-installed -r requirements.txt
USER appuser
COPY . .
EXPOSE 5000
CMD ["gunicorn", "--bind", "0.0.0.0:5000", "app:app"]
EOF
b build --progress quiet -f "$work/Dockerfile.single" --build-arg BASE=bench/python:latest "${pipargs[@]}" \
	-t bench/flask:single "$app" >/dev/null || die "berth build of the single-stage Dockerfile failed"

# --- c (berth half). cold zero-config builds -----------------------------------
log "cold zero-config builds with berth ($cold_runs runs, --no-cache)"
cold=()
for i in $(seq "$cold_runs"); do
	t0=$(now_ns)
	zc --no-cache -t bench/flask:zc >/dev/null || die "berth build (zero-config) failed"
	cold+=("$(secs "$t0" "$(now_ns)")")
done
berth_cold=$(median "${cold[@]}")

# --- a. rebuild after a code change --------------------------------------------
log "zero-config rebuilds after a code change ($runs runs)"
zc -t bench/flask:zc >/dev/null
rebuild=()
for i in $(seq "$runs"); do
	printf '\n# change %s\n' "$i" >>"$app/app.py"
	t0=$(now_ns)
	zc -t bench/flask:zc >/dev/null || die "berth rebuild failed"
	rebuild+=("$(secs "$t0" "$(now_ns)")")
done
berth_rebuild=$(median "${rebuild[@]}")

size() { b image inspect -f '{{.Size}}' "$1"; }
base_size=$(size bench/python:latest)
zc_size=$(size bench/flask:zc)
single_size=$(size bench/flask:single)

# --- c (docker half). docker build of the generated Dockerfile ------------------
docker_cold=
docker_skip=
cp -a "$sample" "$work/flask-docker"
b init --base bench/python:latest "$work/flask-docker" >/dev/null || die "berth init failed"
sed -E 's/^RUN --mount=type=cache,[^ ]* /RUN /' "$work/flask-docker/Dockerfile" >"$work/Dockerfile.docker"
if grep -qE -- '--mount|<<' "$work/Dockerfile.docker"; then
	docker_skip="the generated Dockerfile needs BuildKit (RUN --mount or a heredoc) and docker's buildx is not installed"
elif ! command -v docker >/dev/null || ! PATH=$PATH:/usr/sbin command -v dockerd >/dev/null; then
	docker_skip="docker.io is not installed"
else
	# shellcheck source=scripts/docker-engine.sh
	. "$repo_root/scripts/docker-engine.sh"
	if ! docker_engine_start "$work/docker" 2>"$work/docker-start.log"; then
		docker_skip="cannot start a private dockerd: $(tail -n 1 "$work/docker-start.log")"
		DOCKER_ENGINE_PID=
	fi
fi
if [ -z "$docker_skip" ]; then
	b save -o "$work/base.tar" bench/python:latest
	docker load -i "$work/base.tar" >/dev/null || die "docker load of the base image failed"
	log "cold builds of the generated Dockerfile with docker ($cold_runs runs, --no-cache)"
	dcold=()
	for i in $(seq "$cold_runs"); do
		t0=$(now_ns)
		DOCKER_BUILDKIT=0 docker build -q --no-cache --network host -f "$work/Dockerfile.docker" \
			--build-arg BASE=bench/python:latest "${pipargs[@]}" -t bench/flask:docker "$work/flask-docker" \
			>"$work/docker-build.log" 2>&1 || die "docker build failed: $(tail -n 5 "$work/docker-build.log")"
		dcold+=("$(secs "$t0" "$(now_ns)")")
	done
	docker_cold=$(median "${dcold[@]}")
fi

mb() { awk -v s="$1" 'BEGIN { printf "%.1f MB", s / 1e6 }'; }
echo
echo "zero-config berth build, Flask sample (medians; load average before: $load_before)"
printf '  a. rebuild after a code change:    %6ss   (target < 1 s)%s\n' "$berth_rebuild" \
	"$(awk -v r="$berth_rebuild" 'BEGIN { print (r < 1) ? "  ok" : "  MISSED" }')"
printf '  b. image size, zero-config:        %s (base %s, app layers %s)\n' "$(mb "$zc_size")" "$(mb "$base_size")" "$(mb $((zc_size - base_size)))"
printf '     image size, single-stage:       %s (app layers %s)\n' "$(mb "$single_size")" "$(mb $((single_size - base_size)))"
printf '     ratio zero-config/single-stage: %s (app layers only: %s)\n' "$(ratio "$zc_size" "$single_size")" \
	"$(ratio $((zc_size - base_size)) $((single_size - base_size)))"
printf '  c. cold build, berth zero-config:  %6ss (--no-cache)\n' "$berth_cold"
if [ -n "$docker_cold" ]; then
	printf '     cold build, docker build:       %6ss (same generated Dockerfile)\n' "$docker_cold"
	printf '     ratio berth/docker:             %s\n' "$(ratio "$berth_cold" "$docker_cold")"
else
	printf '     docker build: skipped (%s)\n' "$docker_skip"
fi
