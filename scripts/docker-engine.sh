#!/usr/bin/env bash
# docker-engine.sh starts and stops a private Docker engine (Debian's
# docker.io dockerd) for scripts such as bench/registry.sh. It never touches
# the host's firewall, bridges or sysctls (--bridge none, --iptables=false,
# --ip-forward=false), so containers must run with --network none.
#
# Source it, then:
#
#   docker_engine_start DIR   start dockerd with its data root, socket and
#                             log in DIR; exports DOCKER_HOST
#   docker_engine_stop        stop it (SIGTERM, SIGKILL after 30 s)
#
# Run directly, "scripts/docker-engine.sh DIR" starts an engine in DIR, prints
# the DOCKER_HOST to use, and stops the engine on Ctrl-C.
#
# It needs root and dockerd (apt-get install docker.io). The go tests use
# internal/testutil.Docker instead, which shares one engine between test
# binaries; this one is separate and private to its caller.

# docker_engine_start DIR starts dockerd with state under DIR and waits (at
# most 60 s) until it answers.
docker_engine_start() {
	local dir=${1:?docker_engine_start: state directory required}
	local dockerd
	if [ "$(id -u)" -ne 0 ]; then
		echo "docker-engine: starting dockerd needs root" >&2
		return 1
	fi
	dockerd=$(PATH=$PATH:/usr/sbin:/sbin command -v dockerd) || {
		echo "docker-engine: dockerd not found; apt-get install docker.io" >&2
		return 1
	}
	command -v docker >/dev/null || {
		echo "docker-engine: docker CLI not found; apt-get install docker.io" >&2
		return 1
	}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	# The exec root holds containerd's socket, whose path must stay under
	# the 108-byte limit of unix socket paths.
	DOCKER_ENGINE_EXEC_ROOT=$(mktemp -d /run/berth-docker.XXXXXX)
	local driver sock=$dir/docker.sock
	for driver in overlay2 vfs; do
		rm -f "$sock"
		PATH=$PATH:/usr/sbin:/sbin env -u DOCKER_HOST "$dockerd" \
			--data-root "$dir/data" \
			--exec-root "$DOCKER_ENGINE_EXEC_ROOT" \
			--pidfile "$dir/dockerd.pid" \
			--host "unix://$sock" \
			--storage-driver "$driver" \
			--bridge none --iptables=false --ip-masq=false --ip-forward=false \
			--log-level warn \
			</dev/null >"$dir/dockerd.log" 2>&1 &
		DOCKER_ENGINE_PID=$!
		local i
		for ((i = 0; i < 600; i++)); do
			if ! kill -0 "$DOCKER_ENGINE_PID" 2>/dev/null; then
				break
			fi
			if [ -S "$sock" ] && DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1; then
				export DOCKER_HOST=unix://$sock
				return 0
			fi
			sleep 0.1
		done
		echo "docker-engine: dockerd ($driver) did not come up; log:" >&2
		tail -n 20 "$dir/dockerd.log" >&2
		docker_engine_stop
		DOCKER_ENGINE_EXEC_ROOT=$(mktemp -d /run/berth-docker.XXXXXX)
	done
	rm -rf "$DOCKER_ENGINE_EXEC_ROOT"
	return 1
}

# docker_engine_stop stops the engine docker_engine_start started.
docker_engine_stop() {
	local pid=${DOCKER_ENGINE_PID:-}
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		local i
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "docker-engine: dockerd ignored SIGTERM for 30 s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	fi
	DOCKER_ENGINE_PID=
	if [ -n "${DOCKER_ENGINE_EXEC_ROOT:-}" ]; then
		rm -rf --one-file-system "$DOCKER_ENGINE_EXEC_ROOT" 2>/dev/null || true
		DOCKER_ENGINE_EXEC_ROOT=
	fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	[ $# -eq 1 ] || {
		echo "usage: $0 STATE_DIR" >&2
		exit 2
	}
	docker_engine_start "$1"
	trap docker_engine_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	echo "export DOCKER_HOST=$DOCKER_HOST   # Ctrl-C stops the engine"
	while kill -0 "$DOCKER_ENGINE_PID" 2>/dev/null; do sleep 1; done
fi
