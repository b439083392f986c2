#!/usr/bin/env bash
# build.sh measures "berth build" against "docker build" and "buildah bud
# --layers" in the same run, on two Python apps, and prints the median
# times and the berth/docker and berth/buildah ratios:
#
#   cold     first build with the base image present and the build cache
#            empty (berth builder prune -a / docker builder prune -a /
#            buildah rmi of the built image and its cached layers first);
#   changed  rebuild after changing one .py file (only the steps from its
#            COPY on run again);
#   warm     rebuild with nothing changed (every step cached).
#
# The apps: examples/flask-hello, and a larger multi-stage app the script
# writes (a venv, 40 modules compiled in a build stage, several RUN steps).
# Targets (issue 4): changed <= 0.5x docker; warm under 0.2 s.
#
# Usage: bench/build.sh [--runs N]     (N timed runs per figure, default 3)
#
# Base image: the python tarball of scripts/mkbase.sh (cached like the
# tests' in $BERTH_TEST_CACHE or /var/cache/berth-test), imported into
# berth and loaded into a private dockerd (scripts/docker-engine.sh) with
# "berth save" + "docker load", so both start from the same image. Both
# builders run RUN steps without a network (--network none; the apps need
# none). docker builds with BuildKit when the CLI has it (buildx, or
# Debian's 20.10 CLI at /usr/bin/docker, whose BuildKit is built in) and
# with the classic builder otherwise; the table says which. buildah (Debian's
# package; skipped with a note when missing) uses a private storage root
# under the work directory (overlay driver, runc), the base pulled into it
# from the same "berth save" archive. Needs root.
# Everything the script starts or creates is removed on exit.
set -euo pipefail

prog=build.sh
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

runs=3
parse_args runs:runs:"--runs needs a number" -- "$@"
positive runs
need_root "builds run in sandboxes and it starts a private dockerd"

enter_repo
docker_engine
need_tools "apt-get install it" go docker tar python3 awk

have_buildah=
if command -v buildah >/dev/null && command -v runc >/dev/null; then
	have_buildah=1
else
	log "buildah (or runc) not found: measuring without it (apt-get install buildah)"
fi

work=$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)
# buildah with a private storage root; runc, as crun refuses hybrid cgroups.
bh() { buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver overlay "$@"; }
# cleanup runs on exit (on_exit).
cleanup() {
	berth_reset
	stop_docker
	if [ -n "$have_buildah" ] && [ -d "$work/buildah" ]; then
		bh rm --all >/dev/null 2>&1
		bh rmi --all --force >/dev/null 2>&1
	fi
	remove_work
}
set_traps on_exit

build_berth
python_tar=$(base_tarball python) || exit

log "importing the base image"
b import "$python_tar" bench/python:latest >/dev/null
b save -o "$work/base.tar" bench/python:latest
start_docker
docker load -i "$work/base.tar" >/dev/null
if [ -n "$have_buildah" ]; then
	log "loading the base image into buildah"
	bh pull -q docker-archive:"$work/base.tar" >/dev/null || die "buildah pull docker-archive:$work/base.tar failed"
fi

# The docker CLI that builds with BuildKit, if any.
dcli=(docker)
builder="classic builder"
if docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=1
	builder="BuildKit (buildx)"
elif [ -x /usr/bin/docker ] && /usr/bin/docker --version 2>/dev/null | grep -q ' 20\.10'; then
	dcli=(/usr/bin/docker)
	export DOCKER_BUILDKIT=1
	builder="BuildKit (docker 20.10 CLI)"
else
	export DOCKER_BUILDKIT=0
fi
log "docker builds with the $builder"

# --- the apps ------------------------------------------------------------
mkdir -p "$work/apps"
cp -r examples/flask-hello "$work/apps/flask-hello"
big=$work/apps/multistage
mkdir -p "$big/pkg"
cat >"$big/Dockerfile" <<'DOCKERFILE'
ARG BASE=python:3.11-slim
FROM ${BASE} AS build
WORKDIR /src
COPY requirements.txt .
RUN python3 -m venv --without-pip --system-site-packages /opt/venv
RUN /opt/venv/bin/python3 -m pip install --no-cache-dir --no-index -r requirements.txt
COPY pkg/ pkg/
RUN python3 -m compileall -q pkg && find pkg -name '*.pyc' | wc -l > /src/count

FROM ${BASE}
RUN useradd --create-home --uid 1000 app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/pkg /app/pkg
COPY --from=build /src/count /app/count
WORKDIR /app
COPY app.py .
RUN python3 -c "import ast,sys; ast.parse(open('app.py').read())"
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER app
EXPOSE 8000
CMD ["python3", "app.py"]
DOCKERFILE
printf 'flask>=2.2\n' >"$big/requirements.txt"
for i in $(seq -w 1 40); do
	printf 'def handler_%s(x):\n    return {"module": %d, "value": x * %d}\n' "$i" "$((10#$i))" "$((10#$i))" >"$big/pkg/mod$i.py"
done
touch "$big/pkg/__init__.py"
cat >"$big/app.py" <<'PY'
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello from the multi-stage app!"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
PY

# --- timing --------------------------------------------------------------
# time_s CMD... runs CMD (output discarded) and prints its seconds.
time_s() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >"$work/last.log" 2>&1 || {
		tail -n 30 "$work/last.log" >&2
		die "failed: $*"
	}
	t1=$(date +%s%N)
	secs "$t0" "$t1"
}

berth_build() { b build --progress plain --network none --build-arg BASE=bench/python:latest -t "bench/$1:latest" "$work/apps/$1"; }
docker_build() { "${dcli[@]}" build --network none --build-arg BASE=bench/python:latest -t "bench/$1:latest" "$work/apps/$1"; }
buildah_build() { bh bud --runtime "$(command -v runc)" --layers --pull=never --network none --build-arg BASE=bench/python:latest -t "bench/$1:latest" "$work/apps/$1"; }
berth_clear() { b builder prune -a -f; }
docker_clear() { "${dcli[@]}" builder prune -a -f; }
# Every image but the base goes: the built ones and the cached layers.
buildah_clear() {
	local base id
	base=$(bh images -q --no-trunc localhost/bench/python:latest)
	for id in $(bh images -a -q --no-trunc); do
		[ "$id" = "$base" ] || bh rmi --force "$id" >/dev/null 2>&1 || true
	done
}
tools=(berth docker)
[ -z "$have_buildah" ] || tools+=(buildah)

declare -A result
measure() { # measure TOOL APP
	local tool=$1 app=$2 i cold=() warm=() changed=()
	for ((i = 0; i < runs; i++)); do
		"${tool}_clear" >/dev/null 2>&1 || true
		cold+=("$(time_s "${tool}_build" "$app")")
		printf '# change %s %s\n' "$tool" "$i" >>"$work/apps/$app/app.py"
		changed+=("$(time_s "${tool}_build" "$app")")
		warm+=("$(time_s "${tool}_build" "$app")")
	done
	result[$tool,$app,cold]=$(printf '%s\n' "${cold[@]}" | median %.3f)
	result[$tool,$app,changed]=$(printf '%s\n' "${changed[@]}" | median %.3f)
	result[$tool,$app,warm]=$(printf '%s\n' "${warm[@]}" | median %.3f)
}

load_before=$(loadavg)
for app in flask-hello multistage; do
	# One untimed build each first: the base image's layers get unpacked
	# (berth) or snapshotted (docker) once, as on any machine that has
	# built before.
	berth_build "$app" >"$work/first.log" 2>&1 || {
		tail -n 30 "$work/first.log" >&2
		die "berth build $app failed"
	}
	docker_build "$app" >"$work/first.log" 2>&1 || {
		tail -n 30 "$work/first.log" >&2
		die "docker build $app failed"
	}
	if [ -n "$have_buildah" ]; then
		buildah_build "$app" >"$work/first.log" 2>&1 || {
			tail -n 30 "$work/first.log" >&2
			die "buildah bud $app failed"
		}
	fi
	log "measuring $app ($runs runs each)"
	for tool in "${tools[@]}"; do
		measure "$tool" "$app"
	done
done
load_after=$(loadavg)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
printf '\nberth build vs docker build (%s)' "$builder"
if [ -n "$have_buildah" ]; then
	printf ' vs %s' "$(buildah --version | cut -d' ' -f1-3)"
	printf ' bud --layers (overlay, runc)'
fi
printf ', median of %d runs, seconds\n' "$runs"
printf 'machine: %s CPUs, load %s before, %s after\n\n' "$(nproc)" "$load_before" "$load_after"
printf '%-12s %-8s %9s %9s %9s %9s %9s\n' APP CASE BERTH DOCKER BUILDAH B/DOCKER B/BUILDAH
for app in flask-hello multistage; do
	for c in cold changed warm; do
		bt=${result[berth,$app,$c]} dt=${result[docker,$app,$c]} ht=${result[buildah,$app,$c]:-}
		hr=-
		[ -z "$ht" ] || hr=$(ratio "$bt" "$ht")
		printf '%-12s %-8s %9s %9s %9s %9s %9s\n' "$app" "$c" "$bt" "$dt" "${ht:--}" "$(ratio "$bt" "$dt")" "$hr"
	done
done
printf '\ntargets: changed <= 0.50x docker; warm < 0.2 s\n'
