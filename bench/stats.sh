#!/usr/bin/env bash
# stats.sh times "berth stats --no-stream" over many running containers
# (target: under 0.5 s for 50) and, when docker is installed, the same
# with "docker stats --no-stream" in the same run, and prints the ratio.
#
# Usage: bench/stats.sh [--containers N] [--runs N]
#
#   --containers N   containers started, each "sleep 100000" in the minimal
#                    base image (default 50)
#   --runs N         timed runs of each command (default 10; median shown)
#
# berth is built from this checkout into a temporary directory; the minimal
# base image is the tests' (scripts/mkbase.sh, cached in $BERTH_TEST_CACHE
# or /var/cache/berth-test) imported with "berth import". berth's
# containers use its default bridge network (so every reading includes the
# network counters); docker's are in a private dockerd
# (scripts/docker-engine.sh) with --network none, as that engine has no
# bridge. docker gets the same image through "berth save" + "docker load".
#
# Timing uses hyperfine when installed, else a bash loop (median of N runs).
# Needs root. Every container, engine and file it makes is removed on exit,
# also on failure.
set -euo pipefail

prog=stats.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

ncontainers=50
runs=10
while [ $# -gt 0 ]; do
	case "$1" in
	--containers) ncontainers=${2:?--containers needs a number}; shift 2 ;;
	--containers=*) ncontainers=${1#--containers=}; shift ;;
	--runs) runs=${2:?--runs needs a number}; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
for v in ncontainers runs; do
	case "${!v}" in '' | *[!0-9]* | 0) die "--$v must be a positive number, not '${!v}'" ;; esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (it runs containers and may start a private dockerd)"
command -v go >/dev/null || die "go not found"

cd "$(dirname -- "$0")/.."
repo_root=$PWD
# shellcheck source=scripts/docker-engine.sh
. "$repo_root/scripts/docker-engine.sh"

work=$(mktemp -d /var/tmp/berth-bench-stats.XXXXXX)
cleanup() {
	local status=$?
	trap - EXIT INT TERM ERR
	set +e
	log "cleaning up"
	if [ -n "${BERTH:-}" ] && [ -x "$BERTH" ]; then
		"$BERTH" --root "$BROOT" system reset -f >/dev/null 2>&1 || {
			log "warning: berth system reset failed; removing containers one by one"
			"$BERTH" --root "$BROOT" ps -aq 2>/dev/null | xargs -r "$BERTH" --root "$BROOT" rm -f >/dev/null 2>&1
		}
	fi
	if [ -n "${DOCKER_ENGINE_PID:-}" ]; then
		docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
		docker_engine_stop
	fi
	awk -v d="$work/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf --one-file-system -- "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

log "building berth"
CGO_ENABLED=1 go build -trimpath -o "$work/bin/berth" ./cmd/berth || die "go build ./cmd/berth failed"
export BERTH=$work/bin/berth BROOT=$work/berth
b() { "$BERTH" --root "$BROOT" "$@"; }

cache=${BERTH_TEST_CACHE:-/var/cache/berth-test}
mkdir -p "$cache"
minimal_tar=$cache/base-minimal-$(sha256sum scripts/mkbase.sh | cut -c1-12).tar.gz
if [ ! -f "$minimal_tar" ]; then
	log "building the minimal base tarball with scripts/mkbase.sh (a few minutes; cached in $cache)"
	(
		flock 9
		[ -f "$minimal_tar" ] || bash scripts/mkbase.sh --variant minimal "$minimal_tar"
	) 9>"$cache/base.lock" || die "scripts/mkbase.sh --variant minimal failed"
fi
b import "$minimal_tar" bench/minimal:latest >/dev/null

have_docker=
if command -v docker >/dev/null && PATH=$PATH:/usr/sbin:/sbin command -v dockerd >/dev/null; then
	log "starting a private docker engine"
	if docker_engine_start "$work/docker"; then
		b save -o "$work/minimal.tar" bench/minimal:latest
		docker load -i "$work/minimal.tar" >/dev/null
		have_docker=1
	else
		log "dockerd does not start here; timing berth alone"
	fi
else
	log "docker is not installed (apt-get install docker.io); timing berth alone"
fi

log "starting $ncontainers containers"
for i in $(seq 1 "$ncontainers"); do
	b run -d --name "s$i" bench/minimal:latest sleep 100000 >/dev/null
	if [ -n "$have_docker" ]; then
		docker run -d --network none --name "s$i" bench/minimal:latest sleep 100000 >/dev/null
	fi
done
n=$(b ps -q | wc -l)
[ "$n" -eq "$ncontainers" ] || die "berth ps shows $n running containers, want $ncontainers"
rows=$(b stats --no-stream --format '{{.Name}}' | wc -l)
[ "$rows" -eq "$ncontainers" ] || die "berth stats --no-stream shows $rows containers, want $ncontainers"

# timeit LABEL CMD... prints the median wall time of RUNS runs in seconds.
timeit() {
	local label=$1 median
	shift
	if command -v hyperfine >/dev/null; then
		hyperfine --runs "$runs" --warmup 2 --style none --export-json "$work/h.json" -- "$*" >/dev/null
		median=$(python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/h.json")
	else
		local times=() i t0
		"$@" >/dev/null
		for ((i = 0; i < runs; i++)); do
			t0=$(date +%s%N)
			"$@" >/dev/null
			times+=("$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')")
		done
		median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
	fi
	log "$label: median $median s"
	printf '%s\n' "$median"
}

log "timing (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
berth_s=$(timeit "berth stats --no-stream" "$BERTH" --root "$BROOT" stats --no-stream)
echo
echo "stats --no-stream over $ncontainers running containers (median of $runs runs, $(nproc) CPUs):"
printf '  %-28s %6s s  (target < 0.5 s: %s)\n' "berth stats --no-stream" "$berth_s" \
	"$(awk -v s="$berth_s" 'BEGIN { print (s < 0.5) ? "met" : "MISSED" }')"
if [ -n "$have_docker" ]; then
	docker_s=$(timeit "docker stats --no-stream" docker stats --no-stream)
	printf '  %-28s %6s s\n' "docker stats --no-stream" "$docker_s"
	printf '  berth / docker = %sx\n' "$(awk -v a="$berth_s" -v b="$docker_s" 'BEGIN { printf "%.2f", a / b }')"
	echo "Versions: docker $(docker version --format '{{.Server.Version}}'), timing: $(command -v hyperfine >/dev/null && hyperfine --version || echo "bash, median of N runs")"
fi
