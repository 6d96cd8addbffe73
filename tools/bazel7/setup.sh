#!/usr/bin/env bash
# Installs Bazel 7.7.1 (Debian forky's bazel-bootstrap) into a separate Debian root under
# .cache/bazel7/root. Bazel 7 needs a newer glibc/libstdc++ than Debian 12 has and reads
# fixed paths (/usr/share/bazel, /etc/bazel/bazelrc) that the host's Bazel 4.2.3 owns,
# so it cannot be installed next to it. Idempotent: a finished root is kept (stamp file);
# an interrupted one is removed and rebuilt. First run: ~2.5 min, ~650 MB download.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${RULES_TFJS_BAZEL7_CACHE:-$REPO/.cache/bazel7}"
ROOTFS="$CACHE/root"
# Change this key to force a rebuild of the root (e.g. when the package list changes).
KEY="forky bazel-bootstrap bazel-skylib bazel-rules-python bazel-platforms v1"
STAMP="$ROOTFS/.rules_tfjs-root"
# The Debian mirror the host's apt already uses (first `URIs:`/`deb` entry ending in
# /debian), unless RULES_TFJS_DEBIAN_MIRROR names another.
host_mirror() {
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
    sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' \
      -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\/debian\)\/\{0,1\}[[:space:]].*/\2/p' |
    head -n 1 || true
}
MIRROR="${RULES_TFJS_DEBIAN_MIRROR:-$(host_mirror)}"
[[ -n "$MIRROR" ]] || { echo "bazel7 setup: no Debian mirror in the host's apt sources; set RULES_TFJS_DEBIAN_MIRROR" >&2; exit 1; }
# The Debian packages the Bazel 7 build needs inside the root.
PACKAGES=(bazel-bootstrap bazel-skylib bazel-rules-python bazel-platforms ca-certificates)

log() { printf '== bazel7 setup: %s\n' "$*" >&2; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" ]]; then
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "bazel7 setup: needs root (debootstrap, mount namespaces)" >&2; exit 1; }
# Work in a private mount namespace: the /proc that debootstrap and the Java packages'
# maintainer scripts need inside the root disappears with it, even if interrupted.
if [[ -z "${RULES_TFJS_BAZEL7_NS:-}" ]]; then
  RULES_TFJS_BAZEL7_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi

start=$(date +%s)
mkdir -p "$CACHE"
# A root without the stamp is a leftover from an interrupted run: start over.
if [[ -e "$ROOTFS" ]]; then
  log "removing unfinished root $ROOTFS"
  rm -rf --one-file-system "$ROOTFS"
fi

# debootstrap from Debian's own package, unpacked (not installed) on the host.
DBS="$CACHE/debootstrap"
if [[ ! -x "$DBS/usr/sbin/debootstrap" ]]; then
  log "fetching debootstrap"
  rm -rf "$DBS" "$CACHE/dl"; mkdir -p "$CACHE/dl"
  # apt-get download needs the package lists: update once if they are missing.
  (cd "$CACHE/dl" && { apt-get download -q debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download -q debootstrap >/dev/null; }; })
  dpkg -x "$CACHE"/dl/debootstrap_*.deb "$DBS"
  rm -rf "$CACHE/dl"
fi

bootstrap() {  # suite; every step checked (set -e does not apply inside `if ! f`)
  rm -rf --one-file-system "$ROOTFS"
  log "debootstrap --variant=minbase $1 ($MIRROR)"
  DEBOOTSTRAP_DIR="$DBS/usr/share/debootstrap" "$DBS/usr/sbin/debootstrap" \
    --variant=minbase "$1" "$ROOTFS" "$MIRROR" sid >"$CACHE/debootstrap.log" 2>&1 || return 1
  printf 'deb %s %s main\n' "$MIRROR" "$1" >"$ROOTFS/etc/apt/sources.list" || return 1
  printf 'Acquire::Check-Valid-Until "false";\n' >"$ROOTFS/etc/apt/apt.conf.d/99no-valid-until" || return 1
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf" || return 1
  log "apt-get install ${PACKAGES[*]} (in the $1 root)"
  mount -t proc proc "$ROOTFS/proc" || return 1
  local status=0
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -q --no-install-recommends ${PACKAGES[*]} && apt-get clean" \
    >"$CACHE/apt.log" 2>&1 || status=$?
  umount "$ROOTFS/proc"
  return "$status"
}

# forky and sid can be briefly uninstallable during library transitions: fall back to sid.
if ! bootstrap forky; then
  log "forky failed (see $CACHE/apt.log, debootstrap.log); trying sid"
  bootstrap sid
fi
mkdir -p "$ROOTFS/.oldroot"
echo "$KEY" >"$STAMP"
log "done in $(( $(date +%s) - start )) s ($(du -sh --one-file-system "$ROOTFS" | cut -f1))"
