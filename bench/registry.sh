#!/usr/bin/env bash
# registry.sh times pushing and pulling a ~300 MB image through one local
# registry with berth, docker and skopeo, and prints the medians and the
# ratios berth/docker (push, target <= 0.3) and berth/skopeo (pull, target
# <= 1.0).
#
# Usage: bench/registry.sh [--runs N] [--size MB] [--registry docker-registry|berth]
#
# The image is Debian bookworm with Python (scripts/mkbase.sh --variant
# python, cached like the tests' base images in $BERTH_TEST_CACHE or
# /var/cache/berth-test) plus generated application data: three quarters
# pseudo-random bytes (like wheels, shared objects and other compressed
# content) and one quarter text, up to --size MB (default 300) in one layer.
# It is imported into berth and loaded into a private docker engine
# (scripts/docker-engine.sh), and skopeo gets an OCI-layout copy.
#
# One registry serves all tools: Debian's docker-registry (default) or
# "berth registry serve", on loopback. Before every push run the registry's
# storage is wiped and the repository name is new, so no tool can skip or
# mount a blob. Each pull starts empty: a fresh berth root, "docker rmi" of
# the image (the docker engine holds no other copy of its layer), a fresh OCI
# directory for skopeo.
#
# Timing uses hyperfine when installed (as root the script tries to install
# it), else N runs (default 3) with the median. Needs root, go, docker.io,
# skopeo, docker-registry, curl and openssl; uses no network beyond loopback
# once the base tarball is cached. Everything it starts is stopped and its
# work directory removed on exit.
set -euo pipefail

prog=registry.sh
# shellcheck source=bench/lib.sh
. "$(dirname -- "$0")/lib.sh"

runs=3
size_mb=300
registry_kind=docker-registry
parse_args runs:runs:"--runs needs a number" size:size_mb:"--size needs a number of MB" \
	registry:registry_kind:"--registry needs docker-registry or berth" -- "$@"
positive runs
case "$size_mb" in '' | *[!0-9]*) die "--size must be a number of MB, not '$size_mb'" ;; esac
case "$registry_kind" in docker-registry | berth) ;; *) die "--registry must be docker-registry or berth" ;; esac

need_root "it starts a private dockerd and builds the base image"

enter_repo
docker_engine

export DEBIAN_FRONTEND=noninteractive
if ! command -v hyperfine >/dev/null; then
	apt-get install -y --no-install-recommends hyperfine >/dev/null 2>&1 ||
		log "hyperfine is not installable here; timing with bash (median of $runs runs)"
fi
need_tools "make deps installs what is missing" go docker skopeo curl openssl tar
if [ "$registry_kind" = docker-registry ]; then
	need_tools "apt-get install docker-registry" docker-registry
fi

work=$(mktemp -d /var/tmp/berth-bench-registry.XXXXXX)
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [ -n "${REGISTRY_PID:-}" ]; then
		registry_stop
	fi
	docker_engine_stop
	rm -rf --one-file-system -- "$work"
	exit "$status"
}
set_traps cleanup

# --- berth ---------------------------------------------------------------
build_berth
export BERTH_SRC_ROOT=$work/berth-src

# --- base tarball (same cache as internal/testutil.BaseTarball) -------------
base=$(base_tarball python) || exit

# --- the image --------------------------------------------------------------
log "making a ${size_mb} MB root filesystem"
rootfs=$work/rootfs
mkdir -p "$rootfs"
tar -C "$rootfs" --numeric-owner -xzf "$base"
base_bytes=$(du -sb "$rootfs" | cut -f1)
data_bytes=$((size_mb * 1000 * 1000 - base_bytes))
[ "$data_bytes" -gt 0 ] || die "--size $size_mb MB is smaller than the base ($((base_bytes / 1000000)) MB)"
mkdir -p "$rootfs/opt/app/data" "$rootfs/opt/app/text"
file_bytes=$((4 * 1024 * 1024))
nfiles=$(((data_bytes * 3 / 4 + file_bytes - 1) / file_bytes))
for ((i = 0; i < nfiles; i++)); do
	# AES-CTR of zeros: incompressible, but the same bytes every run.
	head -c "$file_bytes" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -pass "pass:berth-bench-$i" -pbkdf2 2>/dev/null >"$rootfs/opt/app/data/blob-$i.bin"
done
# Text: the base's Python sources, concatenated until the rest is filled.
text_bytes=$((data_bytes - nfiles * file_bytes))
if [ "$text_bytes" -gt 0 ]; then
	find "$rootfs/usr/lib/python3"* -name '*.py' -type f -print0 | sort -z | xargs -0 cat >"$work/corpus.txt"
	[ -s "$work/corpus.txt" ] || die "no Python sources in the base tarball"
	j=0
	while [ "$text_bytes" -gt 0 ]; do
		n=$((text_bytes < file_bytes ? text_bytes : file_bytes))
		while [ "$(stat -c %s "$work/corpus.txt")" -lt "$n" ]; do
			cat "$work/corpus.txt" "$work/corpus.txt" >"$work/corpus2.txt"
			mv "$work/corpus2.txt" "$work/corpus.txt"
		done
		dd if="$work/corpus.txt" of="$rootfs/opt/app/text/part-$j.py" bs=1M \
			iflag=skip_bytes,count_bytes skip=$((j * 4096)) count="$n" status=none
		text_bytes=$((text_bytes - n))
		j=$((j + 1))
	done
	rm -f "$work/corpus.txt"
fi
image_tar=$work/image.tar
tar -C "$rootfs" --sort=name --mtime=@1686355200 --numeric-owner --format=pax -cf "$image_tar" .
rm -rf --one-file-system "$rootfs"
image_mb=$(($(stat -c %s "$image_tar") / 1000000))
log "image layer: ${image_mb} MB uncompressed (base $((base_bytes / 1000000)) MB)"

log "importing into berth"
t0=$(date +%s%N)
"$BERTH" --root "$BERTH_SRC_ROOT" import "$image_tar" bench/image:latest >/dev/null
import_s=$(secs "$t0" "$(date +%s%N)" %.2f)
berth_id=$("$BERTH" --root "$BERTH_SRC_ROOT" inspect -f '{{.Id}}' bench/image:latest)
rm -f "$image_tar"

start_docker
"$BERTH" --root "$BERTH_SRC_ROOT" save bench/image:latest -o "$work/image-docker.tar"
docker load -i "$work/image-docker.tar" >/dev/null
rm -f "$work/image-docker.tar"
docker_id=$(docker image inspect -f '{{.Id}}' bench/image:latest)
[ "$docker_id" = "$berth_id" ] || die "docker load of berth save gave image $docker_id, berth has $berth_id"

log "making skopeo's OCI layout (gzip, as skopeo compresses it)"
export WORK_OCI=$work/oci-src
skopeo copy --quiet --src-daemon-host "$DOCKER_HOST" docker-daemon:bench/image:latest "oci:$WORK_OCI:latest"

# --- the registry -----------------------------------------------------------
# The registry is restarted with empty storage before every push run (see
# wipe_registry), from bash -c as well as from this shell, so its pid lives
# in a file and these functions are exported.
export REGISTRY_KIND=$registry_kind WORK=$work REGDATA=$work/registry REGISTRY_PID=$work/registry.pid
# alive PID: whether PID runs (a zombie does not count).
alive() {
	local state
	state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}
# registry_start PORT starts the registry on 127.0.0.1:PORT and waits (10 s
# at most) until /v2/ answers.
registry_start() {
	local port=$1 pid i
	mkdir -p "$REGDATA"
	if [ "$REGISTRY_KIND" = berth ]; then
		"$BERTH" --root "$WORK/berth-registry-state" registry serve \
			--addr "127.0.0.1:$port" --root "$REGDATA" </dev/null >>"$WORK/registry.log" 2>&1 &
		pid=$!
	else
		cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGDATA
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(openssl rand -hex 16)
EOF
		env -u REGISTRY_HTTP_ADDR docker-registry serve "$WORK/registry.yml" </dev/null >>"$WORK/registry.log" 2>&1 &
		pid=$!
	fi
	echo "$pid" >"$REGISTRY_PID"
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 1
		curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
		sleep 0.1
	done
	registry_stop
	return 1
}
# registry_stop stops the registry registry_start started.
registry_stop() {
	local pid i
	pid=$(cat "$REGISTRY_PID" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$REGISTRY_PID"
}
# wipe_registry restarts the registry with empty storage, so that no tool
# finds (or can mount) a blob an earlier run pushed, whatever the registry
# caches in memory.
wipe_registry() {
	registry_stop
	find "$REGDATA" -mindepth 1 -delete
	registry_start "${REG##*:}"
}
export -f alive registry_start registry_stop wipe_registry
log "starting $registry_kind on loopback"
for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 20000))
	if registry_start "$port"; then
		export REG=127.0.0.1:$port
		break
	fi
	[ "$attempt" -lt 5 ] || {
		cat "$work/registry.log" >&2
		die "cannot start $registry_kind"
	}
done

# --- timing -----------------------------------------------------------------
export N_FILE=$work/n
echo 0 >"$N_FILE"
results=$work/results.tsv
: >"$results"
# measure LABEL PREPARE COMMAND: PREPARE runs untimed before each run (it
# may bump the run number in $N_FILE, which COMMAND reads), followed by a
# sync so that no run pays for writing back an earlier one's data; the
# median of the runs goes to $results.
measure() {
	local label=$1 prepare="$2; sync" cmd=$3 median
	log "timing $label ($runs runs): $cmd"
	if command -v hyperfine >/dev/null; then
		hyperfine --runs "$runs" --shell bash --prepare "$prepare" --export-json "$work/h.json" \
			--style basic "$cmd" >&2 || die "$label failed"
		median=$(jq -r '.results[0].median' "$work/h.json")
	else
		local times=() r t0 t1
		for ((r = 0; r < runs; r++)); do
			bash -c "$prepare" >>"$work/bench.log" 2>&1 || die "prepare for $label failed; see below:$(printf '\n')$(tail -n 20 "$work/bench.log")"
			t0=$(date +%s%N)
			bash -c "$cmd" >>"$work/bench.log" 2>&1 || die "$label failed:$(printf '\n')$(tail -n 20 "$work/bench.log")"
			t1=$(date +%s%N)
			times+=("$(secs "$t0" "$t1")")
		done
		median=$(printf '%s\n' "${times[@]}" | median)
		log "  runs: ${times[*]} s; median $median s"
	fi
	printf '%s\t%s\n' "$label" "$median" >>"$results"
}
next='wipe_registry; echo $(( $(cat $N_FILE) + 1 )) >$N_FILE'
n='$(cat $N_FILE)'

# Pushes. The pushed size is what the registry holds after the last run.
pushed_size() { printf '%s\t%s\n' "$1" "$(du -sb "$REGDATA" | cut -f1)" >>"$work/sizes.tsv"; }
: >"$work/sizes.tsv"
measure "berth push" "$next; \"\$BERTH\" --root \"\$BERTH_SRC_ROOT\" tag bench/image:latest \$REG/bench/berth-$n:latest" \
	"\"\$BERTH\" --root \"\$BERTH_SRC_ROOT\" push \$REG/bench/berth-$n:latest"
pushed_size "berth push"
measure "docker push" "$next; docker tag bench/image:latest \$REG/bench/docker-$n:latest" \
	"docker push \$REG/bench/docker-$n:latest"
pushed_size "docker push"
measure "skopeo copy oci: → docker://" "$next" \
	"skopeo copy --quiet --dest-tls-verify=false oci:\$WORK_OCI:latest docker://\$REG/bench/skopeo-$n:latest"
pushed_size "skopeo copy oci: → docker://"

# Pulls, all of one image berth pushed.
wipe_registry
"$BERTH" --root "$BERTH_SRC_ROOT" tag bench/image:latest "$REG/bench/pull:latest"
"$BERTH" --root "$BERTH_SRC_ROOT" push "$REG/bench/pull:latest" >/dev/null 2>&1 || die "berth push of the pull image failed"
# Docker must hold no copy of the layer, or docker pull skips it.
{ docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^(bench/|'"$REG"'/bench/)' || true; } | xargs -r docker rmi -f >/dev/null
[ -z "$(docker images -q)" ] || log "warning: the private docker engine still holds images: $(docker images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')"
export PULL_REF=$REG/bench/pull:latest PULL_ROOT=$work/berth-pull PULL_OCI=$work/skopeo-pull
measure "berth pull" 'rm -rf "$PULL_ROOT"' '"$BERTH" --root "$PULL_ROOT" pull "$PULL_REF"'
measure "docker pull" 'docker rmi -f "$PULL_REF" >/dev/null 2>&1 || true' 'docker pull "$PULL_REF"'
measure "skopeo copy docker:// → oci:" 'rm -rf "$PULL_OCI"' \
	'skopeo copy --quiet --src-tls-verify=false "docker://$PULL_REF" "oci:$PULL_OCI:latest"'
# Check that every pull fetched the whole image (the last run's result is
# still there).
pulled_mb() { du -sb "$1" | awk '{ printf "%.0f", $1 / 1e6 }'; }
stored_mb=$(pulled_mb "$REGDATA")
got=$("$BERTH" --root "$PULL_ROOT" inspect -f '{{.Id}}' "$PULL_REF")
[ "$got" = "$berth_id" ] || die "berth pull gave image $got, want $berth_id"
got=$(docker image inspect -f '{{.Id}}' "$PULL_REF")
[ "$got" = "$berth_id" ] || die "docker pull gave image $got, want $berth_id"
for d in "$PULL_ROOT" "$PULL_OCI"; do
	[ "$(pulled_mb "$d")" -ge $((stored_mb * 9 / 10)) ] ||
		die "$d holds $(pulled_mb "$d") MB after a pull of a $stored_mb MB image: something was skipped"
done
pull_sizes="berth root $(pulled_mb "$PULL_ROOT") MB, skopeo OCI dir $(pulled_mb "$PULL_OCI") MB, registry $stored_mb MB"
docker rmi -f "$PULL_REF" >/dev/null 2>&1 || true

# --- report -----------------------------------------------------------------
get() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$results"; }
size_of() { awk -F'\t' -v l="$1" '$1 == l { printf "%.0f MB", $2 / 1e6 }' "$work/sizes.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
push_ratio=$(ratio "$(get "berth push")" "$(get "docker push")")
pull_ratio=$(ratio "$(get "berth pull")" "$(get "skopeo copy docker:// → oci:")")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "meets" : "MISSES" }'; }

cat <<EOF

## Registry push/pull ($(date -u +%Y-%m-%d), $registry_kind on loopback, $runs runs, median)

Image: one ${image_mb} MB layer (Debian bookworm + Python $((base_bytes / 1000000)) MB, the rest generated data); berth import took ${import_s} s.
Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r).
Versions: berth $("$BERTH" version 2>/dev/null | sed -n 's/^berth version //p'), docker $(docker version --format '{{.Server.Version}}'), $(skopeo --version), registry: $( [ "$registry_kind" = berth ] && echo "berth registry serve" || echo "docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $NF }')")

| operation | median (s) | stored in registry |
|---|---:|---:|
| berth push | $(get "berth push") | $(size_of "berth push") |
| docker push | $(get "docker push") | $(size_of "docker push") |
| skopeo copy oci: → docker:// | $(get "skopeo copy oci: → docker://") | $(size_of "skopeo copy oci: → docker://") |
| berth pull (empty root) | $(get "berth pull") | |
| docker pull (after rmi) | $(get "docker pull") | |
| skopeo copy docker:// → oci: | $(get "skopeo copy docker:// → oci:") | |

Pulled (last run): $pull_sizes. All tools read the registry from the page cache.

- push berth/docker: $push_ratio (target ≤ 0.3: $(verdict "$push_ratio" 0.3))
- pull berth/skopeo: $pull_ratio (target ≤ 1.0: $(verdict "$pull_ratio" 1.0))
- for reference: push berth/skopeo $(ratio "$(get "berth push")" "$(get "skopeo copy oci: → docker://")"), pull berth/docker $(ratio "$(get "berth pull")" "$(get "docker pull")")
EOF
