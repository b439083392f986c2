#!/usr/bin/env bash
# run.sh measures berth's container runtime against docker, bare runc and
# (when installable) podman, and prints a table and the ratios against the
# runtime issue's targets:
#
#   1. start-up: "berth run --rm IMAGE true" median <= 0.2x "docker run --rm"
#      and <= 2.5x "runc run" on a prepared bundle (podman for reference);
#   2. from "run -d -p" to the first HTTP 200 of examples/flask-hello
#      <= docker's;
#   3. published-port throughput (wrk, keep-alive, a Python http.server
#      answering 6 bytes)
#      >= 0.9x going straight to the container's IP;
#   4. supervisor memory per running container <= 10 MB VmRSS (median of 10
#      containers running "sleep 1000"; docker's containerd-shim-runc-v2 for
#      comparison).
#
# Usage: bench/run.sh [--runs N] [--duration SECONDS] [--containers N]
#
#   --runs N          timed runs per start-up command (default 20; the Flask
#                     measurement uses N/4, at least 3)
#   --duration S      seconds per wrk run (default 5; 5 runs per target, alternating)
#   --containers N    containers for the memory figure (default 10)
#
# Images: the minimal and python base tarballs of scripts/mkbase.sh (cached
# like the tests' base images in $BERTH_TEST_CACHE or /var/cache/berth-test)
# are imported with "berth import"; the Flask image is built with
# "berth build --build-arg BASE=bench/python:latest examples/flask-hello".
# docker and podman get the same images by "berth save" + "load", and the
# script checks that docker reports the same image IDs.
#
# docker is a private dockerd (scripts/docker-engine.sh, started without a
# default bridge); its containers use --network none for start-up and a
# user-defined bridge network "berthbench" (published ports through
# docker-proxy, as docker does for 127.0.0.1 traffic) for -p. berth uses its
# default bridge network unless a row says --network none. Every tool gets
# warm-up runs first (berth's first run unpacks the layers). Published ports
# are on 127.0.0.1 only.
#
# Timing uses hyperfine (as root the script installs it, wrk and podman with
# apt-get) or else N runs timed in bash, reporting the median. Needs root.
# Every container, image, engine, network and process the script starts is
# removed on exit, also on failure.
set -euo pipefail

prog=run.sh
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

runs=20
duration=5
ncontainers=10
parse_args runs:runs:"--runs needs a number" duration:duration:"--duration needs a number of seconds" \
	containers:ncontainers:"--containers needs a number" -- "$@"
positive runs duration ncontainers
flask_runs=$((runs / 4 < 3 ? 3 : runs / 4))

need_root "it runs containers and starts a private dockerd"

enter_repo
docker_engine

export DEBIAN_FRONTEND=noninteractive
for pkg in hyperfine wrk podman; do
	command -v "$pkg" >/dev/null && continue
	apt-get install -y --no-install-recommends "$pkg" >/dev/null 2>&1 ||
		log "$pkg is not installable here$([ "$pkg" = hyperfine ] && echo "; timing with bash (median of N runs)")"
done
need_tools "apt-get install it" go docker runc curl jq wrk tar python3

work=$(mktemp -d /var/tmp/berth-bench-run.XXXXXX)
export WORK=$work
docker_net=
podman_ok=
podman_skip=
# cleanup runs on exit (on_exit).
cleanup() {
	berth_reset
	if [ -n "${DOCKER_ENGINE_PID:-}" ]; then
		docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
		[ -n "$docker_net" ] && docker network rm "$docker_net" >/dev/null 2>&1
		docker_engine_stop
	fi
	if [ -n "$podman_ok" ]; then
		podman_ rm -af >/dev/null 2>&1
		podman_ system reset -f >/dev/null 2>&1
	fi
	runc --root "$work/runc" delete -f bench-runc >/dev/null 2>&1
	remove_work
}
set_traps on_exit

# --- berth ---------------------------------------------------------------
load_before=$(loadavg)
build_berth

# --- base tarballs (same cache as internal/testutil.BaseTarball) -----------
minimal_tar=$(base_tarball minimal) || exit
python_tar=$(base_tarball python) || exit

log "importing the base images and building examples/flask-hello with berth"
b import "$minimal_tar" bench/minimal:latest >/dev/null
b import "$python_tar" bench/python:latest >/dev/null
t0=$(date +%s%N)
b build --progress quiet --build-arg BASE=bench/python:latest -t bench/flask:latest examples/flask-hello >/dev/null ||
	die "berth build examples/flask-hello failed"
build_s=$(secs "$t0" "$(date +%s%N)" %.1f)
b save -o "$work/images.tar" bench/minimal:latest bench/flask:latest

start_docker
docker load -i "$work/images.tar" >/dev/null
for img in bench/minimal:latest bench/flask:latest; do
	want=$(b inspect -f '{{.Id}}' "$img")
	got=$(docker image inspect -f '{{.Id}}' "$img")
	[ "$got" = "$want" ] || die "docker load of berth save gave $img as $got, berth has $want"
done
docker_net=berthbench
docker network create --driver bridge "$docker_net" >/dev/null || die "docker network create failed"

# podman, with its own storage under $work; skipped when anything fails.
# Its default rlimits (nofile 1048576, nproc 4194304) are above the hard
# limits of a root without CAP_SYS_RESOURCE (as in some VMs and sandboxes),
# so its containers get nofile 1024 and nproc 4096 (which do not change the
# start-up time).
podman_() {
	podman --root "$WORK/podman/root" --runroot "$WORK/podman/run" --storage-driver overlay \
		--cgroup-manager cgroupfs --events-backend file "$@"
}
export PODMAN_RUN_OPTS="--runtime runc --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
export -f podman_
if command -v podman >/dev/null; then
	# shellcheck disable=SC2086
	if podman_ load -i "$work/images.tar" >"$work/podman.log" 2>&1 &&
		podman_ run --rm $PODMAN_RUN_OPTS bench/minimal:latest true >>"$work/podman.log" 2>&1; then
		podman_ok=1
	else
		podman_skip=$(tail -n 1 "$work/podman.log" | tr '|' '/')
		log "podman does not work here; skipping it: $podman_skip"
		podman_ system reset -f >/dev/null 2>&1 || true
	fi
fi
rm -f "$work/images.tar"

# The runc bundle: the minimal image's root file system as a directory.
mkdir -p "$work/bundle/rootfs" "$work/runc"
tar -C "$work/bundle/rootfs" --numeric-owner -xzf "$minimal_tar"
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["true"]' "$work/bundle/config.json" >"$work/bundle/c.json"
mv "$work/bundle/c.json" "$work/bundle/config.json"

# --- timing -----------------------------------------------------------------
results=$work/results.tsv
: >"$results"
# measure LABEL RUNS PREPARE COMMAND: 3 untimed warm-up runs of COMMAND, then
# RUNS timed ones, each after PREPARE (untimed); the median goes to $results.
measure() {
	local label=$1 n=$2 prepare=$3 cmd=$4 median
	log "timing $label ($n runs): $cmd"
	if command -v hyperfine >/dev/null; then
		hyperfine --runs "$n" --warmup 3 --shell bash --prepare "$prepare" --export-json "$work/h.json" \
			--style basic "$cmd" >&2 || die "$label failed"
		median=$(jq -r '.results[0].median' "$work/h.json")
	else
		local times=() r t0 t1
		for ((r = -3; r < n; r++)); do
			bash -c "$prepare" >>"$work/bench.log" 2>&1 || die "prepare for $label failed"
			t0=$(date +%s%N)
			bash -c "$cmd" >>"$work/bench.log" 2>&1 || die "$label failed:$(printf '\n')$(tail -n 20 "$work/bench.log")"
			t1=$(date +%s%N)
			[ "$r" -ge 0 ] && times+=("$(secs "$t0" "$t1" %.4f)")
		done
		median=$(printf '%s\n' "${times[@]}" | median)
		log "  median $median s"
	fi
	printf '%s\t%s\n' "$label" "$median" >>"$results"
}

# 1. Start-up.
measure "berth run --rm" "$runs" true '"$BERTH" --root "$BROOT" run --rm bench/minimal:latest true'
measure "berth run --rm --network none" "$runs" true '"$BERTH" --root "$BROOT" run --rm --network none bench/minimal:latest true'
measure "docker run --rm --network none" "$runs" true 'docker run --rm --network none bench/minimal:latest true'
measure "docker run --rm --network berthbench" "$runs" true 'docker run --rm --network berthbench bench/minimal:latest true'
measure "runc run (prepared bundle)" "$runs" true 'runc --root "$WORK/runc" run --bundle "$WORK/bundle" bench-runc'
if [ -n "$podman_ok" ]; then
	measure "podman run --rm --runtime runc --network none" "$runs" true \
		'podman_ run --rm $PODMAN_RUN_OPTS bench/minimal:latest true'
fi
# Without --rm (the container is removed untimed before each run): shows
# what waiting for the removal costs.
measure "berth run --network none (no --rm)" "$runs" '"$BERTH" --root "$BROOT" rm -f bench-norm >/dev/null 2>&1 || true' \
	'"$BERTH" --root "$BROOT" run --name bench-norm --network none bench/minimal:latest true'
b rm -f bench-norm >/dev/null
measure "docker run --network none (no --rm)" "$runs" 'docker rm -f bench-norm >/dev/null 2>&1 || true' \
	'docker run --name bench-norm --network none bench/minimal:latest true'
docker rm -f bench-norm >/dev/null

# 2. From "run -d -p" to the first HTTP 200 of the Flask example.
# wait_http URL polls URL every 10 ms until it answers 200 (30 s at most).
wait_http() {
	local i
	for ((i = 0; i < 3000; i++)); do
		curl -fs -o /dev/null --max-time 2 "$1" && return 0
		sleep 0.01
	done
	return 1
}
export -f wait_http
# free_port prints a port that 127.0.0.1 can bind now, below the ephemeral
# range (where wrk's and everyone's outgoing connections take their ports).
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 20000))
		python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null &&
			echo "$p" && return
	done
}
export PB=$(free_port) PD=$(free_port)
measure "berth run -d -p → first 200 (Flask)" "$flask_runs" \
	'"$BERTH" --root "$BROOT" rm -f bench-flask >/dev/null 2>&1 || true' \
	'"$BERTH" --root "$BROOT" run -d --name bench-flask -p 127.0.0.1:$PB:80 bench/flask:latest >/dev/null && wait_http http://127.0.0.1:$PB/'
b rm -f bench-flask >/dev/null
measure "docker run -d -p → first 200 (Flask)" "$flask_runs" \
	'docker rm -f bench-flask >/dev/null 2>&1 || true' \
	'docker run -d --name bench-flask --network berthbench -p 127.0.0.1:$PD:80 bench/flask:latest >/dev/null && wait_http http://127.0.0.1:$PD/'
docker rm -f bench-flask >/dev/null

# 3. Published-port throughput: a keep-alive HTTP/1.1 server (Python's
# http.server, threaded, no Nagle) in the Flask image answering 6 bytes.
# busybox httpd closes every connection; at thousands of requests per
# second that piles up TIME_WAIT sockets and conntrack entries until later
# runs collapse, whichever path they take, so it measures the order of the
# runs more than the path. With 2 or more CPUs, the server is pinned to the
# last CPU and wrk to the others, so that they do not compete.
ncpu=$(nproc)
pin_wrk= pin_ctr=() wrk_threads=2
if [ "$ncpu" -ge 2 ]; then
	pin_wrk="taskset -c 0-$((ncpu - 2))"
	pin_ctr=(--cpuset-cpus "$((ncpu - 1))")
	wrk_threads=$((ncpu - 1))
fi
httpd='import http.server as h
class H(h.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"hello\n")
    def log_message(self, *args):
        pass
h.ThreadingHTTPServer(("", 8080), H).serve_forever()'
wrk_rps() { # URL: requests per second of one wrk run; errors to the log
	local out
	out=$($pin_wrk wrk -t"$wrk_threads" -c32 -d"${duration}s" "$1") || die "wrk $1 failed"
	printf '%s\n%s\n' "wrk $1" "$out" >>"$work/wrk.log"
	awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
throughput() { # TOOL PUBLISHED_URL DIRECT_URL
	local i pub=() dir=()
	wait_http "$2" && wait_http "$3" || die "$1 httpd does not answer"
	$pin_wrk wrk -t"$wrk_threads" -c32 -d1s "$2" >/dev/null
	$pin_wrk wrk -t"$wrk_threads" -c32 -d1s "$3" >/dev/null # warm-up
	for i in 1 2 3 4 5; do
		log "wrk $1 run $i: published and direct, ${duration} s each"
		pub+=("$(wrk_rps "$2")")
		dir+=("$(wrk_rps "$3")")
	done
	printf '%s\t%s\n' "$1 published 127.0.0.1" "$(printf '%s\n' "${pub[@]}" | median)" >>"$results"
	printf '%s\t%s\n' "$1 container IP" "$(printf '%s\n' "${dir[@]}" | median)" >>"$results"
	printf '%s: published %s; direct %s\n' "$1" "${pub[*]}" "${dir[*]}" >>"$work/wrk-runs.txt"
}
: >"$work/wrk-runs.txt"
PB2=$(free_port)
b run -d --name bench-httpd "${pin_ctr[@]}" -p "127.0.0.1:$PB2:8080" bench/flask:latest python3 -c "$httpd" >/dev/null
ip=$(b inspect -f '{{.NetworkSettings.IPAddress}}' bench-httpd)
throughput berth "http://127.0.0.1:$PB2/" "http://$ip:8080/"
b rm -f bench-httpd >/dev/null
PD2=$(free_port)
docker run -d --name bench-httpd "${pin_ctr[@]}" --network "$docker_net" -p "127.0.0.1:$PD2:8080" bench/flask:latest python3 -c "$httpd" >/dev/null
ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$docker_net\").IPAddress}}" bench-httpd)
throughput docker "http://127.0.0.1:$PD2/" "http://$ip:8080/"
docker rm -f bench-httpd >/dev/null
wrk_errors=$(grep -E 'Socket errors|Non-2xx' "$work/wrk.log" | sort | uniq -c | sed 's/^ */  /' || true)

# 4. Memory per running container.
kb() { awk -v k="$2" '$1 == k":" { print $2 }' "$1"; }
mem_row() { # LABEL PIDS...: median VmRSS, RssAnon and Pss in MB
	local label=$1 pid rss=() anon=() pss=()
	shift
	for pid in "$@"; do
		rss+=("$(kb "/proc/$pid/status" VmRSS)")
		anon+=("$(kb "/proc/$pid/status" RssAnon)")
		pss+=("$(kb "/proc/$pid/smaps_rollup" Pss)")
	done
	printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$#" \
		"$(printf '%s\n' "${rss[@]}" | median)" "$(printf '%s\n' "${anon[@]}" | median)" \
		"$(printf '%s\n' "${pss[@]}" | median)" >>"$work/mem.tsv"
}
: >"$work/mem.tsv"
log "starting $ncontainers containers of each engine running sleep 1000"
sup=()
for ((i = 0; i < ncontainers; i++)); do
	id=$(b run -d bench/minimal:latest sleep 1000)
	docker run -d --network "$docker_net" bench/minimal:latest sleep 1000 >/dev/null
done
sleep 5 # let every supervisor (it trims its memory 2 s after the start) and shim settle
for id in $(b ps -q --no-trunc); do
	pid=$(jq -r .SupervisorPid "$BROOT/containers/$id/state.json")
	[ "$pid" -gt 0 ] || die "container $id has no supervisor pid"
	sup+=("$pid")
done
[ "${#sup[@]}" -eq "$ncontainers" ] || die "berth runs ${#sup[@]} containers, want $ncontainers"
mem_row "berth supervisor" "${sup[@]}"
shims=()
for id in $(docker ps -q); do
	pid=$(docker inspect -f '{{.State.Pid}}' "$id")
	shims+=("$(kb "/proc/$pid/status" PPid)")
done
shim_name=$(basename "$(readlink "/proc/${shims[0]}/exe")")
mem_row "docker $shim_name" "${shims[@]}"
b ps -q | xargs -r "$BERTH" --root "$BROOT" rm -f >/dev/null
docker ps -q | xargs -r docker rm -f >/dev/null

# --- report -----------------------------------------------------------------
get() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$results"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { # VALUE OP TARGET
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? v <= t : v >= t; print ok ? "PASS" : "MISS" }'
}
berth_up=$(get "berth run --rm")
berth_none=$(get "berth run --rm --network none")
docker_none=$(get "docker run --rm --network none")
docker_br=$(get "docker run --rm --network berthbench")
runc_up=$(get "runc run (prepared bundle)")
r_docker=$(ratio "$berth_up" "$docker_br")
r_docker_none=$(ratio "$berth_none" "$docker_none")
r_runc=$(ratio "$berth_up" "$runc_up")
r_runc_none=$(ratio "$berth_none" "$runc_up")
fb=$(get "berth run -d -p → first 200 (Flask)")
fd=$(get "docker run -d -p → first 200 (Flask)")
r_flask=$(ratio "$fb" "$fd")
tp=$(get "berth published 127.0.0.1")
td=$(get "berth container IP")
r_tp=$(ratio "$tp" "$td")
r_tp_docker=$(ratio "$(get "docker published 127.0.0.1")" "$(get "docker container IP")")
mem_berth=$(awk -F'\t' '$1 == "berth supervisor" { printf "%.1f", $3 / 1024 }' "$work/mem.tsv")

cat <<EOF

## Runtime ($(date -u +%Y-%m-%d), bench/run.sh --runs $runs --duration $duration --containers $ncontainers)

Load average before the run: $load_before (other jobs on the machine add noise).
Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r).
Versions: berth $("$BERTH" version 2>/dev/null | sed -n 's/^berth version //p' | head -n 1), docker $(docker version --format '{{.Server.Version}}') (containerd $(containerd --version 2>/dev/null | awk '{ print $3 }')), $(runc --version | head -n 1)$([ -n "$podman_ok" ] && echo ", $(podman --version)"), $(wrk --version 2>&1 | head -n 1 | awk '{ print $1, $2 }'), timing: $(command -v hyperfine >/dev/null && hyperfine --version || echo "bash, median of N runs").
Flask image built by berth build in ${build_s} s (pip is offline; the base's python3-flask is used).

| measurement | median |
|---|---:|
| berth run --rm (default bridge network) | $(ms "$berth_up") ms |
| berth run --rm --network none | $(ms "$berth_none") ms |
| docker run --rm --network none | $(ms "$docker_none") ms |
| docker run --rm --network berthbench (bridge) | $(ms "$docker_br") ms |
| runc run (prepared bundle) | $(ms "$runc_up") ms |
| podman run --rm --runtime runc --network none | $([ -n "$podman_ok" ] && echo "$(ms "$(get "podman run --rm --runtime runc --network none")") ms" || echo "skipped: ${podman_skip:-not installed}") |
| berth run --network none, no --rm (removed untimed) | $(ms "$(get "berth run --network none (no --rm)")") ms |
| docker run --network none, no --rm (removed untimed) | $(ms "$(get "docker run --network none (no --rm)")") ms |
| berth run -d -p → first HTTP 200 (Flask, $flask_runs runs) | $(ms "$fb") ms |
| docker run -d -p → first HTTP 200 (Flask, $flask_runs runs) | $(ms "$fd") ms |
| berth: wrk via published 127.0.0.1 port | $(get "berth published 127.0.0.1") req/s |
| berth: wrk to the container's IP | $(get "berth container IP") req/s |
| docker: wrk via published 127.0.0.1 port (docker-proxy) | $(get "docker published 127.0.0.1") req/s |
| docker: wrk to the container's IP | $(get "docker container IP") req/s |

wrk runs (req/s, wrk -t$wrk_threads -c32 ${duration} s each${pin_wrk:+ under $pin_wrk, server --cpuset-cpus ${pin_ctr[1]}}; published and direct alternate):
$(sed 's/^/  /' "$work/wrk-runs.txt")
wrk errors reported:
${wrk_errors:-  none}

Memory per running container (median of $ncontainers, MB):

| process | n | VmRSS | RssAnon | Pss |
|---|---:|---:|---:|---:|
$(awk -F'\t' '{ printf "| %s | %d | %.1f | %.1f | %.1f |\n", $1, $2, $3 / 1024, $4 / 1024, $5 / 1024 }' "$work/mem.tsv")

Targets:
- start-up berth/docker: $r_docker (bridge vs bridge; none vs none $r_docker_none); target <= 0.2: $(verdict "$r_docker" "<=" 0.2) ($(verdict "$r_docker_none" "<=" 0.2) with --network none)
- start-up berth/runc: $r_runc (berth --network none: $r_runc_none); target <= 2.5: $(verdict "$r_runc" "<=" 2.5) ($(verdict "$r_runc_none" "<=" 2.5) with --network none)
- run -d -p to first 200, berth/docker: $r_flask; target <= 1.0: $(verdict "$r_flask" "<=" 1.0)
- published/direct throughput: $r_tp (docker: $r_tp_docker); target >= 0.9: $(verdict "$r_tp" ">=" 0.9)
- supervisor VmRSS: $mem_berth MB; target <= 10 MB: $(verdict "$mem_berth" "<=" 10)
EOF
