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
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

runs=5
cold_runs=3
parse_args runs:runs:"--runs needs a number" cold-runs:cold_runs:"--cold-runs needs a number" -- "$@"
positive runs cold_runs

need_root "it builds and runs containers and may start a private dockerd"
need_tools "apt-get install it" go python3 sha256sum awk

enter_repo
sample=$repo_root/pkg/pyproject/testdata/flask-requirements
[ -d "$sample" ] || die "sample project $sample not found"

work=$(mktemp -d /var/tmp/berth-bench-python.XXXXXX)
index_pid=
DOCKER_ENGINE_PID=
# cleanup runs on exit (on_exit).
cleanup() {
	berth_reset
	stop_docker
	stop_pid "$index_pid"
	remove_work
}
set_traps on_exit

# now_ns prints the time in nanoseconds.
now_ns() { date +%s%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# --- berth -------------------------------------------------------------------
load_before=$(loadavg)
build_berth

# --- base tarball and package index ------------------------------------------
base=$(base_tarball python) || exit
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
	cold+=("$(secs "$t0" "$(now_ns)" %.2f)")
done
berth_cold=$(printf '%s\n' "${cold[@]}" | median %.2f)

# --- a. rebuild after a code change --------------------------------------------
log "zero-config rebuilds after a code change ($runs runs)"
zc -t bench/flask:zc >/dev/null
rebuild=()
for i in $(seq "$runs"); do
	printf '\n# change %s\n' "$i" >>"$app/app.py"
	t0=$(now_ns)
	zc -t bench/flask:zc >/dev/null || die "berth rebuild failed"
	rebuild+=("$(secs "$t0" "$(now_ns)" %.2f)")
done
berth_rebuild=$(printf '%s\n' "${rebuild[@]}" | median %.2f)

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
	docker_engine
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
		dcold+=("$(secs "$t0" "$(now_ns)" %.2f)")
	done
	docker_cold=$(printf '%s\n' "${dcold[@]}" | median %.2f)
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
