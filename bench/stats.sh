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
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

ncontainers=50
runs=10
parse_args containers:ncontainers:"--containers needs a number" runs:runs:"--runs needs a number" -- "$@"
positive ncontainers runs
need_root "it runs containers and may start a private dockerd"
need_tools "" go

enter_repo
docker_engine

work=$(mktemp -d /var/tmp/berth-bench-stats.XXXXXX)
# cleanup runs on exit (on_exit).
cleanup() {
	berth_reset
	if [ -n "${DOCKER_ENGINE_PID:-}" ]; then
		docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
		docker_engine_stop
	fi
	remove_work
}
set_traps on_exit

build_berth
minimal_tar=$(base_tarball minimal) || exit
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
			times+=("$(secs "$t0" "$(date +%s%N)")")
		done
		median=$(printf '%s\n' "${times[@]}" | median %.3f)
	fi
	log "$label: median $median s"
	printf '%s\n' "$median"
}

log "timing (load average before: $(loadavg))"
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
