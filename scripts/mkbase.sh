#!/usr/bin/env bash
# mkbase.sh builds a Debian root filesystem tarball for berth's tests and
# demos, the offline stand-in for pulling debian/python base images.
#
# Usage: scripts/mkbase.sh [--variant python|minimal] OUT.tar.gz
#
#   minimal  Debian minbase plus busybox (sh, nc, wget, httpd for tests).
#   python   Debian minbase plus python3, python3-flask, python3-pip,
#            python3-venv and ca-certificates.
#
# The result is a gzip-compressed tar of the root filesystem (entries "./...",
# numeric owners, root:root except where Debian itself says otherwise), with
# an empty /dev, no apt lists, no cached .debs, no logs, and documentation
# and man pages left out as in debian:*-slim images. Timestamps are clamped to
# SOURCE_DATE_EPOCH, so two builds against the same mirror content give the
# same bytes. OUT is written atomically (temporary file, fsync, rename).
#
# It uses mmdebstrap when available and debootstrap otherwise; when neither
# is installed and it runs as root, it installs one with apt-get.
#
# Environment:
#   MKBASE_MIRROR      Debian archive URL (default: the machine's apt
#                      sources for the suite, else http://deb.debian.org/debian)
#   MKBASE_SUITE       Debian suite (default: bookworm)
#   MKBASE_TOOL        force "mmdebstrap" or "debootstrap"
#   SOURCE_DATE_EPOCH  timestamp clamp (default: 1686355200, bookworm's release)
#   TMPDIR             where the root filesystem is assembled
set -euo pipefail

prog=mkbase
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}
usage() {
	cat >&2 <<'EOF'
usage: mkbase.sh [--variant python|minimal] OUT.tar.gz

Builds a Debian root filesystem tarball (gzip-compressed tar) at OUT.tar.gz.
  --variant minimal   Debian minbase plus busybox (default)
  --variant python    minbase plus python3, flask, pip, venv, ca-certificates
EOF
}

variant=minimal
out=
while [ $# -gt 0 ]; do
	case "$1" in
	--variant)
		[ $# -ge 2 ] || {
			usage
			die "--variant needs a value: python or minimal"
		}
		variant=$2
		shift 2
		;;
	--variant=*)
		variant=${1#--variant=}
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		break
		;;
	-*)
		usage
		die "unknown option $1"
		;;
	*)
		[ -z "$out" ] || {
			usage
			die "more than one output path given ($out, $1)"
		}
		out=$1
		shift
		;;
	esac
done
if [ $# -gt 0 ]; then
	[ -z "$out" ] && [ $# -eq 1 ] || {
		usage
		die "expected exactly one output path"
	}
	out=$1
fi
[ -n "$out" ] || {
	usage
	die "missing output path OUT.tar.gz"
}
case "$out" in
*.tar.gz | *.tgz) ;;
*) die "output path $out must end in .tar.gz or .tgz (the tarball is gzip-compressed)" ;;
esac

suite=${MKBASE_SUITE:-bookworm}
include=
case "$variant" in
minimal) include=busybox ;;
python) include=python3,python3-flask,python3-pip,python3-venv,ca-certificates ;;
*) die "unknown variant '$variant': use python or minimal" ;;
esac

outdir=$(dirname -- "$out")
[ -d "$outdir" ] || die "output directory $outdir does not exist"
[ -w "$outdir" ] || die "output directory $outdir is not writable"

# mirror_from_sources prints the first URI of an enabled deb822 stanza in
# /etc/apt/sources.list.d/*.sources whose Suites include $suite exactly (so
# bookworm-security and bookworm-updates archives do not match).
mirror_from_sources() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; uris = ""; suites = ""; enabled = "yes"
				for (i = 1; i <= NF; i++) {
					line = $i
					if (line ~ /^[ \t]*#/) continue
					split(line, kv, ":")
					key = tolower(kv[1]); sub(/^[ \t]+/, "", key); sub(/[ \t]+$/, "", key)
					val = substr(line, index(line, ":") + 1)
					gsub(/^[ \t]+|[ \t]+$/, "", val)
					if (key == "types") types = val
					else if (key == "uris") uris = val
					else if (key == "suites") suites = val
					else if (key == "enabled") enabled = tolower(val)
				}
				if (enabled == "no" || uris == "") next
				if ((" " types " ") !~ / deb /) next
				if ((" " suites " ") !~ (" " suite " ")) next
				split(uris, u, /[ \t]+/)
				print u[1]
				exit
			}' "$f"
	done | head -n 1
}

# mirror_from_list does the same for one-line-style sources.list files:
# "deb [options] URI SUITE COMPONENT...".
mirror_from_list() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v suite="$suite" '
			$1 != "deb" { next }
			{
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}' "$f"
	done | head -n 1
}

mirror=${MKBASE_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(mirror_from_sources || true)
fi
if [ -z "$mirror" ]; then
	mirror=$(mirror_from_list || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
case "$mirror" in
http://* | https://* | file:/*) ;;
*) die "unsupported mirror URI '$mirror' (want http, https or file); set MKBASE_MIRROR" ;;
esac

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
source_line="deb $mirror $suite main"
if [ -r "$keyring" ]; then
	source_line="deb [signed-by=$keyring] $mirror $suite main"
fi

apt_install() {
	local pkg=$1
	if [ "$(id -u)" -ne 0 ]; then
		return 1
	fi
	command -v apt-get >/dev/null 2>&1 || return 1
	log "installing $pkg with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get install -y --no-install-recommends "$pkg" >&2; then
		return 0
	fi
	log "apt-get install $pkg failed; running apt-get update and retrying"
	apt-get update >&2 || return 1
	apt-get install -y --no-install-recommends "$pkg" >&2
}

tool=${MKBASE_TOOL:-}
case "$tool" in
"")
	if command -v mmdebstrap >/dev/null 2>&1; then
		tool=mmdebstrap
	elif command -v debootstrap >/dev/null 2>&1; then
		tool=debootstrap
	elif apt_install mmdebstrap; then
		tool=mmdebstrap
	elif apt_install debootstrap; then
		tool=debootstrap
	else
		die "neither mmdebstrap nor debootstrap is installed; run as root to have them installed, or apt-get install mmdebstrap"
	fi
	;;
mmdebstrap | debootstrap)
	command -v "$tool" >/dev/null 2>&1 || apt_install "$tool" ||
		die "$tool is not installed (apt-get install $tool)"
	;;
*) die "MKBASE_TOOL must be mmdebstrap or debootstrap, not '$tool'" ;;
esac
if [ "$tool" = debootstrap ] && [ "$(id -u)" -ne 0 ]; then
	die "debootstrap needs root; run as root or install mmdebstrap (which can use user namespaces)"
fi
command -v gzip >/dev/null 2>&1 || die "gzip is not installed"
if command -v pigz >/dev/null 2>&1; then
	gz=(pigz -n -6)
else
	gz=(gzip -n -6)
fi

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1686355200}
case "$SOURCE_DATE_EPOCH" in
'' | *[!0-9]*) die "SOURCE_DATE_EPOCH must be a number of seconds, not '$SOURCE_DATE_EPOCH'" ;;
esac

# Paths dpkg leaves out, as in the debian:*-slim images.
dpkg_excludes=(
	'path-exclude=/usr/share/man/*'
	'path-exclude=/usr/share/locale/*'
	'path-include=/usr/share/locale/locale.alias'
	'path-exclude=/usr/share/doc/*'
	'path-include=/usr/share/doc/*/copyright'
	'path-exclude=/usr/share/info/*'
	'path-exclude=/usr/share/lintian/*'
)

# clean_rootfs removes host- and run-specific state from the tree at $1.
clean_rootfs() {
	local root=$1
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
		"$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/* \
		"$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
		"$root"/var/cache/ldconfig/aux-cache "$root"/tmp/* "$root"/var/tmp/* \
		"$root"/run/* "$root"/etc/machine-id "$root"/var/lib/dbus/machine-id
	if [ -d "$root/var/log" ]; then
		find "$root/var/log" -xdev -type f -delete
	fi
	# The engine bind-mounts these at run time; keep empty files as mount
	# points so that the host's contents do not leak into the image.
	: >"$root/etc/resolv.conf"
	: >"$root/etc/hostname"
	chmod 0644 "$root/etc/resolv.conf" "$root/etc/hostname"
}

tmp=$(mktemp "$outdir/.$(basename -- "$out").XXXXXX")
workdir=
cleanup() {
	rm -f -- "$tmp"
	if [ -n "$workdir" ] && [ -d "$workdir" ]; then
		rm -rf --one-file-system -- "$workdir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s)
log "building $variant $suite root filesystem with $tool from $mirror"
log "packages: minbase + ${include//,/ }"

if [ "$tool" = mmdebstrap ]; then
	mode=auto
	[ "$(id -u)" -eq 0 ] && mode=root
	args=(
		--mode="$mode" --variant=minbase --format=tar
		--include="$include"
		--aptopt='Acquire::Languages "none"'
	)
	# Set up merged /usr with symlinks, as debian:bookworm images do, instead
	# of installing the usrmerge package (and perl with it).
	if [ -d /usr/share/mmdebstrap/hooks/merged-usr ]; then
		args+=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
	fi
	for o in "${dpkg_excludes[@]}"; do
		args+=(--dpkgopt="$o")
	done
	# The hook runs in a separate shell; pass the cleanup function along.
	args+=(--customize-hook="$(declare -f clean_rootfs); clean_rootfs \"\$1\"")
	# mmdebstrap writes device nodes into ./dev; mmtarfilter drops them and
	# keeps the empty ./dev directory.
	if ! mmdebstrap "${args[@]}" "$suite" - "$source_line" |
		mmtarfilter --path-exclude='/dev/*' |
		"${gz[@]}" >"$tmp"; then
		die "mmdebstrap failed (exit statuses ${PIPESTATUS[*]}); see the messages above (mirror $mirror)"
	fi
else
	workdir=$(mktemp -d "${TMPDIR:-/tmp}/mkbase.XXXXXX")
	keyopt=()
	[ -r "$keyring" ] && keyopt=(--keyring="$keyring")
	debootstrap --variant=minbase --include="$include" "${keyopt[@]}" \
		"$suite" "$workdir/root" "$mirror" >&2 ||
		die "debootstrap failed; see the messages above (and $workdir/root/debootstrap/debootstrap.log)"
	log "cleaning root filesystem"
	clean_rootfs "$workdir/root"
	find "$workdir/root/dev" -mindepth 1 -delete
	log "creating tarball"
	tar -C "$workdir/root" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
		--numeric-owner --one-file-system --format=pax --xattrs \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-c . | "${gz[@]}" >"$tmp" || die "packing the root filesystem failed"
	rm -rf --one-file-system -- "$workdir"
	workdir=
fi

log "checking the tarball"
listing=$(tar -tzf "$tmp") || die "the produced tarball is unreadable"
for want in ./etc/os-release ./usr/bin/sh ./var/lib/dpkg/status; do
	grep -qxF -- "$want" <<<"$listing" || die "the produced tarball lacks $want"
done
if grep -q '^\./dev/.' <<<"$listing"; then
	die "the produced tarball has entries under /dev"
fi

chmod 0644 "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$out"
sync -- "$outdir" 2>/dev/null || true
size=$(du -h -- "$out" | cut -f1)
log "wrote $out ($size) in $(($(date +%s) - start))s"
