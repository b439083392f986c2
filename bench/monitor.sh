#!/usr/bin/env bash
# monitor.sh measures the CPU that "berth monitor" uses while watching many
# running containers and being scraped by Prometheus once a second
# (target: under 5% of one core for 50 containers).
#
# Usage: bench/monitor.sh [--containers N] [--duration SECONDS]
#
#   --containers N   containers started, each "sleep 100000" in the minimal
#                    base image on berth's default bridge network (default 50)
#   --duration S     seconds of scraping measured (default 30)
#
# berth is built from this checkout into a temporary directory; the minimal
# base image is the tests' (scripts/mkbase.sh, cached in $BERTH_TEST_CACHE
# or /var/cache/berth-test) imported with "berth import". "berth monitor"
# runs with its defaults (the dashboard's sampler reads every container
# once a second) on a loopback port; after a 5 s warm-up, /metrics is
# fetched with curl once a second for S seconds (gzipped, as Prometheus
# asks for it), and the monitor's CPU time (utime + stime of
# /proc/PID/stat) over that span is printed as a percentage of one core,
# with the mean scrape time and size. There is no peer in the same run:
# cAdvisor is not packaged for Debian.
#
# Needs root. Every container, process and file it makes is removed on
# exit, also on failure.
set -euo pipefail

prog=monitor.sh
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

ncontainers=50
duration=30
parse_args containers:ncontainers:"--containers needs a number" duration:duration:"--duration needs a number of seconds" -- "$@"
positive ncontainers duration
need_root "it runs containers"
need_tools "" go
need_tools "apt-get install curl" curl

enter_repo

work=$(mktemp -d /var/tmp/berth-bench-monitor.XXXXXX)
monitor_pid=
# cleanup runs on exit (on_exit).
cleanup() {
	stop_pid "$monitor_pid"
	berth_reset
	remove_work
}
set_traps on_exit

build_berth
minimal_tar=$(base_tarball minimal) || exit
b import "$minimal_tar" bench/minimal:latest >/dev/null

log "starting $ncontainers containers"
for i in $(seq 1 "$ncontainers"); do
	b run -d --name "m$i" bench/minimal:latest sleep 100000 >/dev/null
done
n=$(b ps -q | wc -l)
[ "$n" -eq "$ncontainers" ] || die "berth ps shows $n running containers, want $ncontainers"

"$BERTH" --root "$BROOT" monitor --listen 127.0.0.1:0 >"$work/monitor.out" 2>"$work/monitor.err" &
monitor_pid=$!
url=
for _ in $(seq 1 100); do
	url=$(sed -n 's|.*serving \(http://[^ ]*/\) .*|\1|p' "$work/monitor.out")
	[ -n "$url" ] && break
	kill -0 "$monitor_pid" 2>/dev/null || die "berth monitor exited: $(cat "$work/monitor.err")"
	sleep 0.1
done
[ -n "$url" ] || die "berth monitor printed no URL: $(cat "$work/monitor.out" "$work/monitor.err")"
log "berth monitor (pid $monitor_pid) serving $url"

series=$(curl -fsS "${url}metrics" | grep -c '^container_cpu_usage_seconds_total{' || true)
[ "$series" -eq "$ncontainers" ] || die "/metrics has $series container_cpu_usage_seconds_total series, want $ncontainers"

# cpu_ticks PID: utime + stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

log "warming up for 5 s (the sampler fills its history)"
sleep 5
log "scraping /metrics once a second for $duration s (load average before: $(loadavg))"
ticks0=$(cpu_ticks "$monitor_pid")
t0=$(date +%s%N)
: >"$work/scrapes"
for ((i = 0; i < duration; i++)); do
	next=$(($(date +%s%N) + 1000000000))
	curl -fsS --compressed -o /dev/null -w '%{time_total} %{size_download}\n' "${url}metrics" >>"$work/scrapes"
	now=$(date +%s%N)
	[ "$now" -lt "$next" ] && sleep "$(awk -v d=$((next - now)) 'BEGIN { printf "%.3f", d / 1e9 }')"
done
ticks1=$(cpu_ticks "$monitor_pid")
t1=$(date +%s%N)
kill -0 "$monitor_pid" 2>/dev/null || die "berth monitor died during the run: $(cat "$work/monitor.err")"

hz=$(getconf CLK_TCK)
pct=$(awk -v d=$((ticks1 - ticks0)) -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", d / hz / (ns / 1e9) * 100 }')
scrape_ms=$(awk '{ s += $1; n++ } END { printf "%.1f", s / n * 1000 }' "$work/scrapes")
scrape_kb=$(awk '{ s += $2; n++ } END { printf "%.1f", s / n / 1024 }' "$work/scrapes")
echo
echo "berth monitor watching $ncontainers running containers, /metrics scraped once a second for $duration s ($(nproc) CPUs, load average $(loadavg)):"
printf '  CPU use of berth monitor  %6s%% of one core  (target < 5%%: %s)\n' "$pct" \
	"$(awk -v p="$pct" 'BEGIN { print (p < 5) ? "met" : "MISSED" }')"
printf '  mean scrape               %6s ms, %s KiB gzipped\n' "$scrape_ms" "$scrape_kb"
