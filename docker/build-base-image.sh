#!/usr/bin/env bash
# Build the registry-free base image the docker backend's tests and the smoke tasks run in.
#
# No registry is needed: debootstrap writes a minimal Debian root filesystem (python3, git,
# ca-certificates) from the Debian mirror, and `docker import` turns it into an image. Idempotent:
# when the tag already exists nothing is done (pass --force to rebuild).
#
#   docker/build-base-image.sh [--force] [TAG]
#
# Environment: ISOBENCH_BASE_IMAGE (tag, default isobench/base:bookworm-py3), ISOBENCH_DEBIAN_SUITE
# (default bookworm), ISOBENCH_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

force=0
tag="${ISOBENCH_BASE_IMAGE:-isobench/base:bookworm-py3}"
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "build-base-image: unknown option $arg" >&2; exit 2 ;;
        *) tag="$arg" ;;
    esac
done
suite="${ISOBENCH_DEBIAN_SUITE:-bookworm}"
mirror="${ISOBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="python3,python-is-python3,git,ca-certificates"

say() { echo "build-base-image: $*"; }

if ! docker info >/dev/null 2>&1; then
    echo "build-base-image: the Docker engine cannot be reached (is dockerd running, may this user use it?)" >&2
    exit 1
fi
if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    say "$tag already exists, nothing to do (--force rebuilds it)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "build-base-image: debootstrap needs root; run this script with sudo" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap with apt-get"
    apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null; }
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/isobench-rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
start=$(date +%s)
say "debootstrap --variant=minbase --include=$packages $suite $rootfs $mirror"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
say "trimming apt caches and documentation"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
say "docker import -> $tag"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'LABEL isobench.owner=pytest-isobench isobench.kind=base' \
    --change "LABEL isobench.base.suite=$suite" \
    --change 'CMD ["/bin/sh"]' \
    - "$tag" >/dev/null
say "built $tag in $(( $(date +%s) - start )) s: $(docker run --rm --network none "$tag" python --version 2>&1), $(docker run --rm --network none "$tag" git --version)"
