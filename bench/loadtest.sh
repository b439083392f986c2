#!/usr/bin/env bash
# loadtest.sh compares the load generator of "berth loadtest" with wrk
# against the same small HTTP service, in the same run:
#
#   berth loadtest -c 64 -d 10s URL     (closed loop, 64 connections)
#   wrk -c 64 -d 10s -t 2 URL
#
# and prints each tool's requests/s and the ratio berth/wrk. The issue's
# target is a ratio of at least 1.0 (berth sustains what wrk reaches).
# The tools take turns (alternating which goes first); the figures are
# medians over the runs, the ratio the median of each run's ratio, so
# that a burst of other work on the machine skews one run, not the
# result. Each tool's CPU time per request (user + system, from bash's
# time) is printed too: it shows the generators' cost even when other
# work on the machine makes the requests/s figures noisy.
#
# Usage: bench/loadtest.sh [--runs N] [--duration SECONDS] [--connections N] [--url URL]
#
#   --runs N          runs per tool, taking turns (default 3)
#   --duration S      seconds per run (default 10)
#   --connections N   connections (-c) for both tools (default 64)
#   --url URL         load this service instead of the built-in one
#
# The built-in service is a Go net/http server on 127.0.0.1 answering
# "hello\n" (keep-alive, no logging), built from source by the script and
# run on the host, so the figure is the generators' and not a container's.
# Both tools and the service share this machine's CPUs; a generator that
# needs less CPU per request leaves more to the service and so gets more
# requests through. Needs go and wrk (apt-get install wrk); no root.
set -euo pipefail

prog=loadtest.sh
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

runs=3
duration=10
conns=64
url=
parse_args runs:runs:"--runs needs a number" duration:duration:"--duration needs a number of seconds" \
	connections:conns:"--connections needs a number" url:url:"--url needs a URL" -- "$@"
positive runs duration conns
need_tools "apt-get install go" go
need_tools "apt-get install wrk" wrk

cd "$(dirname -- "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-loadtest.XXXXXX")
server_pid=
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	stop_pid "$server_pid"
	rm -rf -- "$work"
	exit "$status"
}
set_traps cleanup --no-err

log "building berth"
CGO_ENABLED=1 go build -o "$work/berth" ./cmd/berth || die "go build ./cmd/berth failed"

if [ -z "$url" ]; then
	log "building the service"
	mkdir -p "$work/hello"
	cat >"$work/hello/main.go" <<'GO'
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	hello := []byte("hello\n")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(hello) }))
}
GO
	printf 'module hello\n\ngo 1.22\n' >"$work/hello/go.mod"
	(cd "$work/hello" && GOFLAGS= go build -o "$work/hello-server" .) || die "building the service failed"
	"$work/hello-server" >"$work/addr" &
	server_pid=$!
	for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
	[ -s "$work/addr" ] || die "the service did not start"
	url="http://$(cat "$work/addr")/"
fi
log "target $url; $runs runs of ${duration}s per tool, $conns connections; load $(loadavg)"

# median_of prints the median of its arguments.
median_of() { printf '%s\n' "$@" | median; }
# run_wrk and run_berth print "REQUESTS_PER_S CPU_US_PER_REQUEST": the
# second figure (user + system CPU time of the tool over the requests it
# completed) depends much less on other work on the machine.
TIMEFORMAT='%U %S'
run_wrk() {
	local out cpu
	{ time wrk -c "$conns" -d "${duration}s" -t 2 "$url" >"$work/wrk.out"; } 2>"$work/time"
	cpu=$(tail -n1 "$work/time")
	out=$(awk -v cpu="$cpu" '
		/ requests in / { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END { split(cpu, c, " "); if (n > 0 && rps > 0) printf "%s %.2f\n", rps, (c[1] + c[2]) * 1e6 / n }' "$work/wrk.out")
	[ -n "$out" ] || die "wrk printed no Requests/sec: $(cat "$work/wrk.out")"
	echo "$out"
}
run_berth() {
	local b cpu
	{ time "$work/berth" --root "$work/root" loadtest -q -c "$conns" -d "${duration}s" \
		--format '{{printf "%.0f %d %d" .RPS .Requests .Failed}}' "$url" >"$work/berth.out"; } 2>"$work/time" ||
		die "berth loadtest failed: $(cat "$work/time")"
	cpu=$(tail -n1 "$work/time")
	b=$(awk -v cpu="$cpu" '{ split(cpu, c, " "); if ($3 != 0) print "warning: berth counted " $3 " failed requests" > "/dev/stderr"
		if ($2 > 0) printf "%s %.2f\n", $1, (c[1] + c[2]) * 1e6 / $2 }' "$work/berth.out")
	[ -n "$b" ] || die "berth loadtest printed $(cat "$work/berth.out")"
	echo "$b"
}
wrks=()
berths=()
ratios=()
wcpus=()
bcpus=()
for i in $(seq "$runs"); do
	# Alternate which tool goes first, so a change in the machine's
	# other load does not always favour the same one.
	if [ $((i % 2)) -eq 1 ]; then
		read -r w wc <<<"$(run_wrk)"
		read -r b bc <<<"$(run_berth)"
	else
		read -r b bc <<<"$(run_berth)"
		read -r w wc <<<"$(run_wrk)"
	fi
	r=$(awk -v b="$b" -v w="$w" 'BEGIN { printf "%.3f", b / w }')
	log "run $i: wrk $w requests/s (${wc}us CPU/request), berth loadtest $b requests/s (${bc}us CPU/request), ratio $r"
	wrks+=("$w")
	berths+=("$b")
	ratios+=("$r")
	wcpus+=("$wc")
	bcpus+=("$bc")
done

printf '%-24s %14s %18s\n' "-c $conns, ${duration}s, median of $runs" "requests/s" "CPU us/request"
printf '%-24s %14.0f %18.2f\n' "wrk -t 2" "$(median_of "${wrks[@]}")" "$(median_of "${wcpus[@]}")"
printf '%-24s %14.0f %18.2f\n' "berth loadtest" "$(median_of "${berths[@]}")" "$(median_of "${bcpus[@]}")"
printf 'ratio berth/wrk: %.2f (median of the runs'"'"' ratios; target >= 1.0)\n' "$(median_of "${ratios[@]}")"
