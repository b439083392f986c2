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
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

ncontainers=50
duration=30
while [ $# -gt 0 ]; do
	case "$1" in
	--containers) ncontainers=${2:?--containers needs a number}; shift 2 ;;
	--containers=*) ncontainers=${1#--containers=}; shift ;;
	--duration) duration=${2:?--duration needs a number of seconds}; shift 2 ;;
	--duration=*) duration=${1#--duration=}; shift ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
for v in ncontainers duration; do
	case "${!v}" in '' | *[!0-9]* | 0) die "--$v must be a positive number, not '${!v}'" ;; esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (it runs containers)"
command -v go >/dev/null || die "go not found"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"

cd "$(dirname -- "$0")/.."

work=$(mktemp -d /var/tmp/berth-bench-monitor.XXXXXX)
monitor_pid=
cleanup() {
	local status=$?
	trap - EXIT INT TERM ERR
	set +e
	log "cleaning up"
	if [ -n "$monitor_pid" ]; then
		kill "$monitor_pid" 2>/dev/null
		wait "$monitor_pid" 2>/dev/null
	fi
	if [ -n "${BERTH:-}" ] && [ -x "$BERTH" ]; then
		"$BERTH" --root "$BROOT" system reset -f >/dev/null 2>&1 || {
			log "warning: berth system reset failed; removing containers one by one"
			"$BERTH" --root "$BROOT" ps -aq 2>/dev/null | xargs -r "$BERTH" --root "$BROOT" rm -f >/dev/null 2>&1
		}
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
log "scraping /metrics once a second for $duration s (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
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
echo "berth monitor watching $ncontainers running containers, /metrics scraped once a second for $duration s ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  CPU use of berth monitor  %6s%% of one core  (target < 5%%: %s)\n' "$pct" \
	"$(awk -v p="$pct" 'BEGIN { print (p < 5) ? "met" : "MISSED" }')"
printf '  mean scrape               %6s ms, %s KiB gzipped\n' "$scrape_ms" "$scrape_kb"
