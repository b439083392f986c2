# shellcheck shell=bash
# bench/lib.sh: the helpers the bench/*.sh scripts share. A script sets its
# name for messages and sources this file first:
#
#   set -euo pipefail
#   prog=stats.sh
#   # shellcheck source=bench/lib.sh
#   . "$(dirname -- "$0")/lib.sh"
#
# Sourcing it defines functions and sets $cache (the base tarball cache,
# $BERTH_TEST_CACHE or /var/cache/berth-test, as internal/testutil uses);
# it changes no shell options, so the script's set -euo pipefail holds in
# these functions as in its own code. Functions that need the script's
# work directory read it from $work.

cache=${BERTH_TEST_CACHE:-/var/cache/berth-test}

# log MSG... prints "PROG: MSG" on stderr.
# shellcheck disable=SC2154 # prog is the sourcing script's
log() { printf '%s: %s\n' "$prog" "$*" >&2; }

# die MSG... prints "PROG: error: MSG" on stderr and exits 1.
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

# usage prints the script's header comment (from line 2 to the line before
# "set -euo pipefail"), without the comment marks.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# parse_args OPT:VAR:MISSING... -- ARGS... sets VAR from "--OPT VALUE" or
# "--OPT=VALUE" in ARGS, for each OPT given; a missing or empty VALUE after
# "--OPT" ends the script with the MISSING message (as ${2:?MISSING} does).
# -h or --help prints usage and exits 0; anything else ends the script with
# "unknown argument".
parse_args() {
	local specs=() spec opt var msg matched
	while [ "$1" != -- ]; do
		specs+=("$1")
		shift
	done
	shift
	while [ $# -gt 0 ]; do
		case "$1" in
		-h | --help)
			usage
			exit 0
			;;
		esac
		matched=
		for spec in "${specs[@]}"; do
			opt=${spec%%:*} var=${spec#*:}
			msg=${var#*:} var=${var%%:*}
			case "$1" in
			"--$opt")
				printf -v "$var" '%s' "${2:?$msg}"
				shift 2
				;;
			"--$opt="*)
				printf -v "$var" '%s' "${1#--"$opt"=}"
				shift
				;;
			*) continue ;;
			esac
			matched=1
			break
		done
		[ -n "$matched" ] || die "unknown argument $1 (see --help)"
	done
}

# positive VAR... dies unless each VAR holds a positive whole number; the
# message names the option --VAR (with - for _).
positive() {
	local v
	for v in "$@"; do
		case "${!v}" in '' | *[!0-9]* | 0) die "--${v//_/-} must be a positive number, not '${!v}'" ;; esac
	done
}

# need_root WHY dies unless the script runs as root, saying WHY it must.
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root ($1)"; }

# need_tools HINT TOOL... dies unless every TOOL is on $PATH, with the
# message "TOOL not found (HINT)", or "TOOL not found" when HINT is empty.
need_tools() {
	local hint=$1 tool
	shift
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool not found${hint:+ ($hint)}"
	done
}

# enter_repo changes to the checkout's top directory (the script's parent)
# and sets repo_root to it.
enter_repo() {
	cd "$(dirname -- "$0")/.."
	repo_root=$PWD
}

# umount_under DIR unmounts everything mounted below DIR, deepest first.
umount_under() {
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# remove_work unmounts what is mounted below $work and removes it.
# shellcheck disable=SC2154 # work is the sourcing script's
remove_work() {
	umount_under "$work"
	rm -rf --one-file-system -- "$work"
}

# stop_pid PID kills PID (if PID is not empty) and waits for it.
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# berth_reset removes everything berth made under $BROOT (once berth is
# built): "berth system reset -f", or, when that fails, every container one
# by one.
berth_reset() {
	[ -n "${BERTH:-}" ] && [ -x "$BERTH" ] || return 0
	"$BERTH" --root "$BROOT" system reset -f >/dev/null 2>&1 || {
		log "warning: berth system reset failed; removing containers one by one"
		"$BERTH" --root "$BROOT" ps -aq 2>/dev/null | xargs -r "$BERTH" --root "$BROOT" rm -f >/dev/null 2>&1
	}
}

# set_traps HANDLER [--no-err] installs HANDLER (on_exit, or the script's
# own) as the EXIT trap, logs the failing line and command on ERR (unless
# --no-err), and turns INT and TERM into exits with status 130 and 143 (so
# that HANDLER runs).
set_traps() {
	# shellcheck disable=SC2064 # the handler's name, expanded now on purpose
	trap "$1" EXIT
	if [ "${2:-}" != --no-err ]; then
		# shellcheck disable=SC2016 # expanded when the trap runs
		trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR
	fi
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# on_exit is the EXIT trap for a script with a cleanup function: with the
# traps off and errexit off (so that one failing step does not skip the
# rest), it logs "cleaning up", calls cleanup and exits with the status
# the script was exiting with.
on_exit() {
	local status=$?
	trap - EXIT INT TERM ERR
	set +e
	log "cleaning up"
	cleanup
	exit "$status"
}

# stop_docker stops the private dockerd if start_docker (or
# docker_engine_start) started one.
stop_docker() {
	if [ -n "${DOCKER_ENGINE_PID:-}" ]; then
		docker_engine_stop
	fi
}

# build_berth [--version] builds ./cmd/berth into $work/bin/berth and
# exports BERTH (the binary) and BROOT ($work/berth, the data directory b
# uses). --version stamps "git describe" into "berth version".
# shellcheck disable=SC2120 # the argument is optional
# build_berth builds berth as "make build" does (static, with the seccomp
# tag: the binary users run) and installs it into $work/bin as "make
# install" would. Running the linker's fresh output instead would make
# the supervisors' resident sets depend on how the linker wrote the file
# (its page cache folios), not on berth.
build_berth() {
	log "building berth"
	make --no-print-directory -s build >&2 || die "make build failed"
	install -D -m 0755 bin/berth "$work/bin/berth" || die "install bin/berth failed"
	export BERTH=$work/bin/berth BROOT=$work/berth
}

# b ARGS... runs the built berth with --root $BROOT.
b() { "$BERTH" --root "$BROOT" "$@"; }

# base_tarball VARIANT prints the path of the VARIANT ("minimal" or
# "python") base tarball of scripts/mkbase.sh in $cache, building it first
# (under a lock shared with the tests; mkbase.sh logs on stderr) when it is
# not there yet. Call it as
#   minimal_tar=$(base_tarball minimal) || exit
# (the "|| exit" passes on its failure, which it has reported, without the
# ERR trap's line).
base_tarball() {
	local variant=$1 f
	mkdir -p "$cache"
	f=$cache/base-$variant-$(sha256sum scripts/mkbase.sh | cut -c1-12).tar.gz
	if [ ! -f "$f" ]; then
		log "building the $variant base tarball with scripts/mkbase.sh (a few minutes; cached in $cache)"
		(
			flock 9
			[ -f "$f" ] || bash scripts/mkbase.sh --variant "$variant" "$f"
		) 9>"$cache/base.lock" || die "scripts/mkbase.sh --variant $variant failed"
	fi
	printf '%s\n' "$f"
}

# docker_engine loads scripts/docker-engine.sh (docker_engine_start,
# docker_engine_stop).
docker_engine() {
	# shellcheck source=scripts/docker-engine.sh
	. "$repo_root/scripts/docker-engine.sh"
}

# start_docker starts the private dockerd of scripts/docker-engine.sh in
# $work/docker, or dies.
start_docker() {
	log "starting a private docker engine"
	docker_engine_start "$work/docker" || die "cannot start dockerd"
}

# loadavg prints the 1, 5 and 15 minute load averages.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# secs T0 T1 [FORMAT] prints the seconds from T0 to T1 (both in ns, as
# "date +%s%N" prints them) with the printf FORMAT (default %.3f), without
# a newline.
secs() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN { printf f, (b - a) / 1e9 }'; }

# median [FORMAT] prints the median of the numbers on stdin, one a line:
# the middle one as it was read, or the mean of the two middle ones, printed
# with the printf FORMAT when given (else as awk prints a number).
# shellcheck disable=SC2120 # the argument is optional
median() {
	sort -g | awk -v f="${1:-}" '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]
		else if (f == "") print (v[NR / 2] + v[NR / 2 + 1]) / 2
		else printf f "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}
