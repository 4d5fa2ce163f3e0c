#!/usr/bin/env bash
# Emulated Raspberry Pi image check (issue 18): does the app install and run on an Actcast device?
#
#   sudo tools/pi_image_check.sh bookworm|bullseye [--frames N] [--fresh] [--rebuild]
#
# What it does, in a Debian root file system under qemu-user-static (not a CI step: it takes
# tens of minutes, needs root, network and binfmt_misc):
#   1. debootstrap the target's Debian into $PI_IMAGES/<target> (default ~/pi-images; reused when
#      already there): bookworm arm64 (Pi 4/5 64-bit Actcast OS), bullseye armhf (32-bit).
#      Actcast's base images are debian:bookworm-slim (arm64) and a Raspbian bullseye minbase
#      (armhf), both with the Raspberry Pi archive, no recommends and WORKDIR /root
#      (github.com/Idein/docker-actcast-rpi-app-base); this check mirrors that with Debian's
#      packages and adds the Raspberry Pi archive when it can reach it.
#   2. copy it to $PI_IMAGES/<target>-run and install exactly what .actdk/dependencies.json lists
#      for raspberrypi-<target> the way actdk does: the top-level "apt"/"pip" lists plus the
#      target's own, apt first, then pip (the OS's python3 and pip; pip is not in the base image,
#      so python3-pip is added and reported as tooling). The -run copy is reused while the lists
#      and the base are the same (--fresh recreates it).
#   3. copy app/ as actdk deploys it (its contents into /root), write ACT_SETTINGS_PATH from
#      act_settings.json (display and local_video_server off: no HDMI or port here), set
#      HANDPOSE_HEARTBEAT, and run the app's Actcast entry point `handpose.actcast.main()` (what
#      app/main runs) on the first N frames of the bundled clip. The Actcast entry point only
#      reads a camera, so a small harness replaces `open_camera` with an image-folder source of
#      the clip's frames (decoded to PNG on the host: PyAV is not in the dependencies and not
#      installed in the image); everything else is the real main: settings, actfw Application,
#      CommandServer, notify on stdout, heartbeat, signal handling.
#   4. check: notify lines valid against data_schema.json, heartbeat touched, healthchecker exits
#      0 (and 1 without a heartbeat), SIGTERM stops a running app (exit code and seconds), and
#      /root/main itself starts and stops with one clean camera error (no camera here).
#   5. print a summary (target, Debian, Python, apt + pip versions, pip freeze, interpreter,
#      frames, events, duration, each check PASS/FAIL); exit 1 on any FAIL.
#
# Environment: PI_IMAGES (default ~/pi-images), DEBIAN_MIRROR (default http://deb.debian.org/
# debian), RPI_ARCHIVE=auto|off (add the Raspberry Pi archive when reachable; default auto),
# PI_CHECK_DEPS (another dependencies.json to try, default .actdk/dependencies.json),
# RUN_TIMEOUT (s, default 3600), SIGTERM_TIMEOUT (s, default 60), INSTALL_TIMEOUT (s, 5400).
# Logs: $PI_IMAGES/<target>-logs/<time>/ (one file per step, summary.txt).

set -euo pipefail

usage() {
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --frames N (default 20), --fresh (reinstall the -run copy), --rebuild (re-debootstrap)"
}

die() {
    echo "pi_image_check: error: $*" >&2
    exit 2
}

note() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# the whole check is one function, so bash has parsed all of it before it runs: editing this
# file while a check is running cannot change what that run does
main() {

TARGET=""
FRAMES=20
FRESH=0
REBUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        bookworm | bullseye) TARGET=$1 ;;
        --frames)
            [ $# -ge 2 ] || die "--frames needs a number"
            FRAMES=$2
            shift
            ;;
        --fresh) FRESH=1 ;;
        --rebuild) REBUILD=1 FRESH=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument '$1' (usage: $0 bookworm|bullseye [--frames N] [--fresh] [--rebuild])" ;;
    esac
    shift
done
[ -n "$TARGET" ] || die "which target? usage: $0 bookworm|bullseye [--frames N] [--fresh] [--rebuild]"
case "$FRAMES" in '' | *[!0-9]*) die "--frames wants a positive integer, got '$FRAMES'" ;; esac
[ "$FRAMES" -ge 1 ] || die "--frames wants a positive integer, got '$FRAMES'"

case "$TARGET" in
    bookworm) ARCH=arm64 QEMU=aarch64 RPI_URL=https://archive.raspberrypi.com/debian ;;
    bullseye) ARCH=armhf QEMU=arm RPI_URL=http://archive.raspberrypi.org/debian ;;
esac
SUITE=$TARGET
FIRMWARE="raspberrypi-$TARGET"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGES=${PI_IMAGES:-$HOME/pi-images}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RPI_ARCHIVE=${RPI_ARCHIVE:-auto}
RUN_TIMEOUT=${RUN_TIMEOUT:-3600}
SIGTERM_TIMEOUT=${SIGTERM_TIMEOUT:-60}
INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-5400}
BASE=$IMAGES/$TARGET
ROOTFS=$IMAGES/$TARGET-run
LOGS=$IMAGES/$TARGET-logs/$(date +%Y%m%d-%H%M%S)
CHECK_DIR=/opt/pi_image_check # inside the image
MARKER=.pi_image_check_base
DEPS_MARKER=.pi_image_check_deps # the -run copy: apt and pip done for this key
APT_MARKER=.pi_image_check_apt   # the -run copy: apt done for this key
T0=$(date +%s)

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount): sudo $0 $TARGET"
DEPS_FILE=${PI_CHECK_DEPS:-$REPO/.actdk/dependencies.json}
[ -f "$DEPS_FILE" ] || die "$DEPS_FILE not found"
[ -d "$REPO/app" ] || die "$REPO/app not found"
mkdir -p "$LOGS"

# host Python for the host-side helpers (decode the clip: PyAV; validate notify: jsonschema)
HOST_PY=python3
[ -x "$REPO/.venv/bin/python" ] && HOST_PY=$REPO/.venv/bin/python
"$HOST_PY" -c 'import av, jsonschema, PIL' 2>/dev/null ||
    die "$HOST_PY needs av, jsonschema and Pillow (pip install av jsonschema pillow, or make $REPO/.venv)"

# ---------------------------------------------------------------------------------------------
# results
CHECKS=()
FAILED=0
check() { # check PASS|FAIL|WARN|SKIP NAME DETAIL
    CHECKS+=("$(printf '%-4s  %-34s %s' "$1" "$2" "$3")")
    [ "$1" != FAIL ] || FAILED=1
    note "$1 $2: $3"
}

# ---------------------------------------------------------------------------------------------
# mounts (undone on exit) and the app process (stopped on exit)
MOUNTS=()
APP_PID=""
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [ -n "$APP_PID" ] && kill -0 "$APP_PID" 2>/dev/null; then
        kill -KILL "$APP_PID" 2>/dev/null || true
        wait "$APP_PID" 2>/dev/null || true
    fi
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null ||
            echo "pi_image_check: warning: could not unmount ${MOUNTS[i]}" >&2
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mounts_under() { # the mount points at or under $1, deepest first
    findmnt -rn -o TARGET | awk -v p="$1" '$0 == p || index($0, p "/") == 1' | sort -r
}

unmount_stale() { # mounts left by a killed earlier run
    local m
    for m in $(mounts_under "$1"); do
        note "unmounting $m (left by an earlier run)"
        umount "$m" 2>/dev/null || umount -l "$m"
    done
}

safe_rm() { # remove a root file system we made; never one with something mounted in it
    local dir=$1
    case "$dir" in "$IMAGES"/?*) ;; *) die "refusing to remove $dir (not under $IMAGES)" ;; esac
    unmount_stale "$dir"
    [ -z "$(mounts_under "$dir")" ] || die "refusing to remove $dir: something is still mounted in it"
    rm -rf --one-file-system "$dir"
}

mount_into() { # mount_into ROOTFS: /proc, /dev (and /dev/pts) for the chroot
    local root=$1
    mount -t proc proc "$root/proc" || die "cannot mount /proc in $root"
    MOUNTS+=("$root/proc")
    mount --bind /dev "$root/dev" || die "cannot bind-mount /dev in $root"
    MOUNTS+=("$root/dev")
    if [ -d /dev/pts ] && mountpoint -q /dev/pts; then
        mount --bind /dev/pts "$root/dev/pts" || die "cannot bind-mount /dev/pts in $root"
        MOUNTS+=("$root/dev/pts")
    fi
    # no /sys: the host's (x86) CPU topology there makes cpuinfo in the aarch64 TFLite runtimes
    # (XNNPACK) crash under qemu with SIGSEGV; without it they warn and run
}

# run a step with its output in $LOGS/NAME.log; on failure: the last lines and a one-line error
step() { # step NAME CMD...
    local name=$1 start rc=0
    shift
    start=$(date +%s)
    note "$name ..."
    "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        tail -n 15 "$LOGS/$name.log" | sed 's/^/    | /' >&2
        echo "pi_image_check: error: $name failed (exit $rc) after $(($(date +%s) - start)) s; log: $LOGS/$name.log" >&2
        return "$rc"
    fi
    note "$name done ($(($(date +%s) - start)) s)"
}

# CHROOT CMD...: in /root of the image with a clean Actcast-like environment; exec all the way,
# so the PID of a backgrounded "${CHROOT[@]}" is the command's own
CHROOT=(chroot "$ROOTFS" /usr/bin/env -i
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root LC_ALL=C.UTF-8 LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
    ACTCAST_PROTOCOL_VERSION=1.3.0 ACTCAST_FIRMWARE_TYPE="$FIRMWARE"
    ACT_SETTINGS_PATH="$CHECK_DIR/act_settings.json"
    ACTCAST_COMMAND_SOCK="$CHECK_DIR/command.sock"
    HANDPOSE_HEARTBEAT="$CHECK_DIR/heartbeat"
    /bin/sh -c 'cd /root && exec "$@"' sh)

reachable() { # reachable URL
    if command -v curl >/dev/null; then
        curl -fsS -o /dev/null --max-time 20 "$1" 2>/dev/null
    else
        "$HOST_PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' "$1" 2>/dev/null
    fi
}

# ---------------------------------------------------------------------------------------------
note "target $TARGET ($ARCH), images in $IMAGES, logs in $LOGS"

# 0. host tools, binfmt, network
if ! command -v debootstrap >/dev/null || [ ! -e /usr/share/doc/qemu-user-static ] ||
    ! command -v update-binfmts >/dev/null; then
    note "installing qemu-user-static debootstrap binfmt-support on the host"
    step host-apt sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-user-static debootstrap binfmt-support' ||
        die "cannot install qemu-user-static debootstrap binfmt-support on the host"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
        die "binfmt_misc is not mounted and cannot be (a privileged container or a VM is needed)"
fi
if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$QEMU" ]; then
    update-binfmts --enable "qemu-$QEMU" >/dev/null 2>&1 || true
fi
grep -q '^enabled' "/proc/sys/fs/binfmt_misc/qemu-$QEMU" 2>/dev/null ||
    die "qemu-$QEMU is not registered in binfmt_misc (update-binfmts --enable qemu-$QEMU)"
reachable "$MIRROR/dists/$SUITE/Release" || die "the Debian mirror $MIRROR is not reachable (set DEBIAN_MIRROR)"
reachable https://pypi.org/simple/pip/ || die "https://pypi.org is not reachable (pip needs it)"

# 1. the target's Debian (debootstrap, reused)
if [ "$REBUILD" = 0 ] && [ -f "$BASE/$MARKER" ]; then
    read -r m_suite m_arch _ <"$BASE/$MARKER" || true
    [ "$m_suite $m_arch" = "$SUITE $ARCH" ] ||
        die "$BASE holds '$m_suite $m_arch', not '$SUITE $ARCH' (run with --rebuild)"
    note "reusing $BASE ($(cat "$BASE/$MARKER"))"
else
    [ ! -e "$BASE" ] || safe_rm "$BASE"
    mkdir -p "$IMAGES"
    step debootstrap-1 debootstrap --arch="$ARCH" --foreign --variant=minbase "$SUITE" "$BASE" "$MIRROR" ||
        die "debootstrap (first stage) failed"
    step debootstrap-2 chroot "$BASE" /debootstrap/debootstrap --second-stage ||
        die "debootstrap --second-stage under qemu-$QEMU failed"
    unmount_stale "$BASE"
    echo "$SUITE $ARCH minbase $MIRROR $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$BASE/$MARKER"
fi

# 2. what .actdk/dependencies.json lists for this target (top-level lists + the target's own)
"$HOST_PY" - "$DEPS_FILE" "$FIRMWARE" "$LOGS" >"$LOGS/deps-form.txt" <<'EOF' ||
import json, sys
from pathlib import Path

path, target, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
try:
    data = json.loads(Path(path).read_text())
except ValueError as error:
    sys.exit(f"{path}: not JSON ({error})")
if not isinstance(data, dict):
    sys.exit(f"{path}: not a JSON object")
forms, lists = [], {"apt": [], "pip": []}
if "apt" in data or "pip" in data:
    forms.append("top-level apt/pip")
section = data.get(target)
if section is not None:
    if not isinstance(section, dict):
        sys.exit(f"{path}: {target!r} is not an object")
    if section.get("base_image"):
        sys.exit(f"{path}: {target} uses base_image {section['base_image']!r}; this check builds "
                 "the default Actcast base only")
    forms.append(f"{target!r} apt/pip")
if not forms:
    sys.exit(f"{path}: neither top-level apt/pip nor a {target!r} section")
for where, values in (("top level", data), (target, section or {})):
    for kind in ("apt", "pip"):
        items = values.get(kind, [])
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            sys.exit(f"{path}: {where} {kind!r} is not a list of package names")
        lists[kind] += [i.strip() for i in items if i.strip() not in lists[kind]]
for kind, items in lists.items():
    (out / f"{kind}.txt").write_text("".join(i + "\n" for i in items))
print(" + ".join(forms))
EOF
    die "cannot read $DEPS_FILE for $FIRMWARE: $(tail -n 1 "$LOGS/deps-form.txt" 2>/dev/null)"
DEPS_FORM=$(cat "$LOGS/deps-form.txt")
mapfile -t APT_PKGS <"$LOGS/apt.txt"
mapfile -t PIP_PKGS <"$LOGS/pip.txt"
note "dependencies.json ($DEPS_FORM): apt: ${APT_PKGS[*]:-(none)}; pip: ${PIP_PKGS[*]:-(none)}"

# 3. the -run copy with the dependencies installed (reused while base + lists are the same)
PIP_BREAK=()
[ "$TARGET" = bookworm ] && PIP_BREAK=(--break-system-packages)
DEPS_KEY=$({
    cat "$BASE/$MARKER" "$LOGS/apt.txt" "$LOGS/pip.txt"
    echo "rpi-archive=$RPI_ARCHIVE v2"
} | sha256sum | cut -c1-16)
unmount_stale "$ROOTFS"
INSTALL_OK=1
network_files() { # the host's DNS and CA bundle (pip verifies pypi.org with it)
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    mkdir -p "$ROOTFS/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
}
# where an earlier run got to with the same base and lists: everything, the apt steps, nothing
STATE=fresh
INSTALL_NOTE="installed now"
if [ "$FRESH" = 0 ] && [ "$(cat "$ROOTFS/$DEPS_MARKER" 2>/dev/null)" = "$DEPS_KEY" ]; then
    STATE=installed
    INSTALL_NOTE="installed by an earlier run (same base and lists, key $DEPS_KEY)"
elif [ "$FRESH" = 0 ] && [ "$(cat "$ROOTFS/$APT_MARKER" 2>/dev/null)" = "$DEPS_KEY" ]; then
    STATE=apt
    INSTALL_NOTE="apt steps by an earlier run that stopped before pip (key $DEPS_KEY); pip now"
fi
if [ "$STATE" != fresh ]; then
    note "reusing $ROOTFS: $INSTALL_NOTE"
    network_files
    mount_into "$ROOTFS"
else
    [ ! -e "$ROOTFS" ] || safe_rm "$ROOTFS"
    note "copying $BASE to $ROOTFS"
    cp -a "$BASE" "$ROOTFS"
    mkdir -p "$ROOTFS$CHECK_DIR"
    # as Actcast's base images configure apt: no services started, no recommends, updates and
    # security
    printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
    chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "0";\nAPT::Install-Suggests "0";\n' \
        >"$ROOTFS/etc/apt/apt.conf.d/01_pi_image_check"
    # main always; -updates and -security where the mirror serves this architecture's index
    SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}
    echo "deb $MIRROR $SUITE main" >"$ROOTFS/etc/apt/sources.list"
    SUITES_NOTE="$SUITE"
    for extra in "$MIRROR $SUITE-updates" "$SECURITY_MIRROR $SUITE-security"; do
        if reachable "${extra% *}/dists/${extra#* }/main/binary-$ARCH/Packages.xz"; then
            echo "deb $extra main" >>"$ROOTFS/etc/apt/sources.list"
            SUITES_NOTE="$SUITES_NOTE, ${extra#* }"
        else
            SUITES_NOTE="$SUITES_NOTE, ${extra#* } (no $ARCH index at ${extra% *}: skipped)"
        fi
    done
    echo "$SUITES_NOTE" >"$ROOTFS$CHECK_DIR/apt_suites.txt"
    RPI_NOTE="not used (RPI_ARCHIVE=off)"
    if [ "$RPI_ARCHIVE" != off ]; then
        if reachable "$RPI_URL/dists/$SUITE/Release" &&
            reachable "$RPI_URL/raspberrypi.gpg.key" && command -v gpg >/dev/null; then
            mkdir -p "$ROOTFS/usr/share/keyrings"
            curl -fsS --max-time 60 "$RPI_URL/raspberrypi.gpg.key" |
                gpg --dearmor >"$ROOTFS/usr/share/keyrings/raspberrypi-archive-keyring.gpg"
            echo "deb [signed-by=/usr/share/keyrings/raspberrypi-archive-keyring.gpg] $RPI_URL $SUITE main" \
                >"$ROOTFS/etc/apt/sources.list.d/raspi.list"
            RPI_NOTE="added ($RPI_URL $SUITE main)"
        else
            RPI_NOTE="NOT reachable from here ($RPI_URL): packages only it has cannot be installed"
        fi
    fi
    echo "$RPI_NOTE" >"$ROOTFS$CHECK_DIR/rpi_archive.txt"
    network_files
    mount_into "$ROOTFS"
    step apt-update timeout "$INSTALL_TIMEOUT" "${CHROOT[@]}" sh -c 'apt-get update && apt-get -y dist-upgrade' ||
        die "apt-get update / dist-upgrade in the image failed"
    # which listed packages the archives here have at all
    : >"$ROOTFS$CHECK_DIR/apt_missing.txt"
    APT_AVAILABLE=()
    for pkg in "${APT_PKGS[@]}"; do
        cand=$("${CHROOT[@]}" apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            echo "$pkg" >>"$ROOTFS$CHECK_DIR/apt_missing.txt"
        else
            APT_AVAILABLE+=("$pkg")
        fi
    done
    if [ ${#APT_AVAILABLE[@]} -gt 0 ]; then
        step apt-install timeout "$INSTALL_TIMEOUT" "${CHROOT[@]}" apt-get install -y --no-install-recommends "${APT_AVAILABLE[@]}" ||
            INSTALL_OK=0
    fi
    if [ "$INSTALL_OK" = 1 ]; then
        step apt-pip-tooling timeout "$INSTALL_TIMEOUT" "${CHROOT[@]}" apt-get install -y --no-install-recommends python3-pip ||
            INSTALL_OK=0
    fi
    [ "$INSTALL_OK" = 0 ] || echo "$DEPS_KEY" >"$ROOTFS/$APT_MARKER"
fi
if [ "$STATE" != installed ] && [ "$INSTALL_OK" = 1 ] && [ ${#PIP_PKGS[@]} -gt 0 ]; then
    network_files # apt's ca-certificates rewrote the CA bundle: the host's again, for pip
    step pip-install timeout "$INSTALL_TIMEOUT" "${CHROOT[@]}" python3 -m pip install --no-cache-dir \
        --disable-pip-version-check "${PIP_BREAK[@]}" "${PIP_PKGS[@]}" || INSTALL_OK=0
    cp "$LOGS/pip-install.log" "$ROOTFS$CHECK_DIR/pip-install.log" 2>/dev/null || true
fi
[ "$STATE" = installed ] || [ "$INSTALL_OK" = 0 ] || echo "$DEPS_KEY" >"$ROOTFS/$DEPS_MARKER"
APT_MISSING=$(tr '\n' ' ' <"$ROOTFS$CHECK_DIR/apt_missing.txt" 2>/dev/null | sed 's/ $//' || true)
RPI_NOTE=$(cat "$ROOTFS$CHECK_DIR/rpi_archive.txt" 2>/dev/null || echo "?")
SUITES_NOTE=$(cat "$ROOTFS$CHECK_DIR/apt_suites.txt" 2>/dev/null || echo "?")
if [ "$INSTALL_OK" = 0 ]; then
    why=$(cat "$LOGS"/pip-install.log "$LOGS"/apt-install.log "$LOGS"/apt-pip-tooling.log 2>/dev/null |
        grep -E '^(ERROR|E): ' | grep -v 'Can not write log' | head -n 1 | cut -c1-200 || true)
    check FAIL "install (apt, then pip)" "${why:-see the logs in $LOGS}"
elif [ -n "$APT_MISSING" ]; then
    case "$RPI_NOTE" in
        added*) check FAIL "install (apt, then pip)" "not in Debian nor the Raspberry Pi archive: $APT_MISSING" ;;
        *) check WARN "install (apt, then pip)" "all installed except $APT_MISSING: not in Debian $SUITE; Raspberry Pi archive $RPI_NOTE" ;;
    esac
else
    check PASS "install (apt, then pip)" "every listed apt and pip package installed"
fi
if grep -q -E 'Building wheel for|Running setup.py install' "$ROOTFS$CHECK_DIR/pip-install.log" 2>/dev/null; then
    check WARN "pip wheels" "pip built from source: $(grep -o -E 'Building wheel for [^ ]+' "$ROOTFS$CHECK_DIR/pip-install.log" | sort -u | tr '\n' ' ')"
fi

# 4. the app as actdk deploys it (the contents of app/ in /root), settings, frames, harness
rm -rf --one-file-system "$ROOTFS/root"
cp -a "$BASE/root" "$ROOTFS/root"
tar -C "$REPO/app" --exclude=__pycache__ --exclude='*.pyc' -cf - . | tar -C "$ROOTFS/root" -xf -
MAIN_REL=$("$HOST_PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("main", "main"))' "$REPO/.actdk/files.json" 2>/dev/null || echo main)
HC_REL=$("$HOST_PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("healthchecker", "healthchecker"))' "$REPO/.actdk/files.json" 2>/dev/null || echo healthchecker)
for rel in "$MAIN_REL" "$HC_REL"; do
    case "$rel" in app/*) check WARN "files.json" "'$rel': actdk resolves it inside app/, so it should be '${rel#app/}'" ;; esac
done
MAIN=/root/${MAIN_REL#app/}
HEALTH=/root/${HC_REL#app/}
[ -x "$ROOTFS$MAIN" ] || die "$MAIN (files.json main) is not an executable file in the deployed app"
[ -x "$ROOTFS$HEALTH" ] || die "$HEALTH (files.json healthchecker) is not an executable file in the deployed app"
APP_REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -z "$(git -C "$REPO" status --porcelain -- app .actdk 2>/dev/null)" ] || APP_REV="$APP_REV + uncommitted changes in app/ or .actdk/"

mkdir -p "$ROOTFS$CHECK_DIR"
"$HOST_PY" - "$REPO/act_settings.json" "$ROOTFS$CHECK_DIR/act_settings.json" <<'EOF' >"$LOGS/settings.txt" ||
import json, sys
settings = json.load(open(sys.argv[1]))
changed = []
for key in ("display", "local_video_server"):  # no HDMI and no port in a chroot
    if settings.get(key):
        settings[key] = False
        changed.append(f"{key}=false")
json.dump(settings, open(sys.argv[2], "w"), indent=1)
print(", ".join(changed) or "as in act_settings.json")
EOF
    die "cannot write the act settings from $REPO/act_settings.json"

CLIP="$REPO/app/handpose/assets/sample_clip.mp4"
[ -f "$CLIP" ] || die "$CLIP not found"
FRAMES_DIR="$IMAGES/frames/$(sha256sum "$CLIP" | cut -c1-12)-$FRAMES"
if [ ! -f "$FRAMES_DIR/.done" ]; then
    mkdir -p "$FRAMES_DIR"
    "$HOST_PY" - "$CLIP" "$FRAMES_DIR" "$FRAMES" <<'EOF' || die "cannot decode $CLIP on the host"
import sys
from pathlib import Path
import av

clip, out, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
written = 0
with av.open(clip) as container:
    for frame in container.decode(video=0):
        if written == count:
            break
        frame.to_image().save(out / f"frame_{written:04d}.png")
        written += 1
if written < count:
    sys.exit(f"{clip} has only {written} frames, {count} asked")
(out / ".done").write_text(f"{written}\n")
EOF
fi
rm -rf "$ROOTFS$CHECK_DIR/frames"
mkdir -p "$ROOTFS$CHECK_DIR/frames"
cp "$FRAMES_DIR"/frame_*.png "$ROOTFS$CHECK_DIR/frames/"

cat >"$ROOTFS$CHECK_DIR/run_main.py" <<'EOF'
"""pi_image_check harness: app/main's `handpose.actcast.main()` with the camera replaced by
frames of the bundled clip (the Actcast entry point reads only cameras). Python 3.9 compatible."""
import os
import sys
import time

sys.path.insert(0, "/root")  # as app/main does: the deployed app folder

import handpose.actcast as actcast  # noqa: E402
from handpose.capture import ImageFolderSource, Orientation  # noqa: E402

FRAMES = os.environ.get("PI_CHECK_FRAMES", "/opt/pi_image_check/frames")
LOOP = os.environ.get("PI_CHECK_LOOP") == "1"
real_build = actcast.build_application
built = {}


def open_frames(kind, settings, device=None):
    if kind == "auto":
        try:
            from handpose.capture import auto_camera

            kind = "auto (%s)" % auto_camera()
        except Exception:
            pass
    print("pi_image_check: camera %s replaced by %s (%s)" % (kind, FRAMES, "looped" if LOOP else "once"),
          file=sys.stderr, flush=True)
    return ImageFolderSource(FRAMES, Orientation.from_settings(settings), loop=LOOP,
                             fps=float(settings.capture_fps))


def build(*args, **kwargs):
    built["app"] = app = real_build(*args, **kwargs)
    return app


actcast.open_camera = open_frames
actcast.build_application = build
start = time.monotonic()
code = actcast.main()
elapsed = time.monotonic() - start
from handpose import runner  # noqa: E402

presenter = getattr(built.get("app"), "presenter", None)
interpreter = getattr(runner, "RUNTIME_VERSION", getattr(runner, "RUNTIME", "?"))
print("pi_image_check: exit=%s frames=%d events=%d seconds=%.1f interpreter=%s python=%s" % (
    code, presenter.frames if presenter else 0, presenter.events if presenter else 0, elapsed,
    interpreter.replace(" ", "/"), sys.version.split()[0]), file=sys.stderr, flush=True)
sys.exit(code)
EOF

# 5. facts about the image
OS_VERSION=$(cat "$ROOTFS/etc/debian_version")
PY_VERSION=$("${CHROOT[@]}" python3 --version 2>&1 || echo "no python3")
# shellcheck disable=SC2016  # dpkg-query's own ${...} format
APT_VERSIONS=$("${CHROOT[@]}" dpkg-query -W -f='${Package} ${Version}\n' "${APT_PKGS[@]}" python3 python3-pip 2>/dev/null || true)
PIP_FREEZE=$("${CHROOT[@]}" python3 -m pip freeze --disable-pip-version-check 2>/dev/null || echo "(pip not available)")
# every TFLite runtime pip installed must load (the app falls back silently to the next one)
if [ "$INSTALL_OK" = 1 ]; then
    for runtime in tflite-runtime:tflite_runtime ai-edge-litert:ai_edge_litert; do
        grep -q -i "^${runtime%%:*}==" <<<"$PIP_FREEZE" || continue
        why=$("${CHROOT[@]}" python3 -c "import ${runtime#*:}.interpreter" 2>&1 | tail -n 1 || true)
        version=$(grep -i "^${runtime%%:*}==" <<<"$PIP_FREEZE" | head -n 1)
        if [ -z "$why" ]; then
            check PASS "$version loads" "import ${runtime#*:}.interpreter"
        else
            check FAIL "$version loads" "$(cut -c1-220 <<<"$why")"
        fi
    done
fi
# the OS's numpy / Pillow (apt) or a pip copy that shadows them (pulled in by a pip package)
OS_PY_MODULES=()
for pkg in "${APT_PKGS[@]}"; do
    case "$pkg" in python3-numpy) OS_PY_MODULES+=(numpy) ;; python3-pil) OS_PY_MODULES+=(PIL) ;; esac
done
if [ "$INSTALL_OK" = 1 ] && [ ${#OS_PY_MODULES[@]} -gt 0 ]; then
    shadowed=$("${CHROOT[@]}" python3 - "${OS_PY_MODULES[@]}" <<'EOF' 2>&1 || true
import importlib
import sys
from importlib.metadata import distributions

for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except Exception as error:
        print("%s cannot be imported (%s)" % (name, error))
        continue
    if module.__file__.startswith("/usr/lib/python3/"):
        continue
    dist = {"PIL": "pillow"}.get(name, name)
    by = sorted(d.metadata["Name"] for d in distributions()
                if any(r.split(";")[0].strip().lower().startswith(dist) for r in (d.requires or [])))
    print("%s %s from %s (pip, required by %s) shadows the apt package" % (
        name, getattr(module, "__version__", "?"), module.__file__.rsplit("/", 2)[0],
        ", ".join(by) or "?"))
EOF
    )
    if [ -z "$shadowed" ]; then
        check PASS "OS numpy/Pillow in use" "${OS_PY_MODULES[*]} import from apt's /usr/lib/python3"
    else
        check WARN "OS numpy/Pillow in use" "$(tr '\n' ';' <<<"$shadowed" | sed 's/;$//')"
    fi
fi

# 6. run main on the clip's frames
heartbeat_host="$ROOTFS$CHECK_DIR/heartbeat"
validate() { # validate STDOUT_FILE -> "RESULT lines=.. records=.. bad=.. kinds=.." (+ first errors)
    "$HOST_PY" - "$REPO/data_schema.json" "$1" <<'EOF'
import json, sys
from collections import Counter
from jsonschema import Draft7Validator

validator = Draft7Validator(json.load(open(sys.argv[1])))
lines = [line for line in open(sys.argv[2]).read().splitlines() if line.strip()]
bad, records, kinds = 0, 0, Counter()
for number, line in enumerate(lines, 1):
    try:
        doc = json.loads(line)
    except ValueError as error:
        bad += 1
        print(f"line {number}: not JSON ({error}): {line[:100]}")
        continue
    errors = list(validator.iter_errors(doc))
    if errors:
        bad += 1
        print(f"line {number}: {errors[0].message[:200]} at {list(errors[0].absolute_path)}")
    if isinstance(doc, list):
        records += len(doc)
        kinds.update(str(r.get("event", "?")) for r in doc if isinstance(r, dict))
print(f"RESULT lines={len(lines)} records={records} bad={bad} kinds="
      + ",".join(f"{k}:{c}" for k, c in sorted(kinds.items())))
EOF
}
field() { sed -n "s/.*pi_image_check: exit=.*\b$1=\([^ ]*\).*/\1/p" "$2" | tail -n 1; }

RUN_FRAMES=0 RUN_EVENTS=0 RUN_SECONDS='?' INTERPRETER='?' APP_PY='?'
if [ "$INSTALL_OK" = 1 ]; then
    rm -f "$heartbeat_host" "$ROOTFS$CHECK_DIR/command.sock"
    run_start=$(date +%s)
    note "main on $FRAMES frames (emulated: slow) ..."
    rc=0
    timeout -k 30 "$RUN_TIMEOUT" "${CHROOT[@]}" python3 "$CHECK_DIR/run_main.py" \
        >"$LOGS/main.stdout" 2>"$LOGS/main.stderr" || rc=$?
    wall=$(($(date +%s) - run_start))
    RUN_FRAMES=$(field frames "$LOGS/main.stderr")
    RUN_EVENTS=$(field events "$LOGS/main.stderr")
    RUN_SECONDS=$(field seconds "$LOGS/main.stderr")
    INTERPRETER=$(field interpreter "$LOGS/main.stderr")
    INTERPRETER=${INTERPRETER/\// }
    APP_PY=$(field python "$LOGS/main.stderr")
    app_interp=$(grep -i -m1 -E 'interpreter|tflite|litert' "$LOGS/main.stderr" | grep -v pi_image_check | cut -c1-160 || true)
    [ -z "$app_interp" ] || INTERPRETER="$INTERPRETER (app log: $app_interp)"
    if [ "$rc" = 0 ] && [ "${RUN_FRAMES:-0}" = "$FRAMES" ] && ! grep -q Traceback "$LOGS/main.stderr"; then
        check PASS "main on the clip" "exit 0, $RUN_FRAMES frames, $RUN_EVENTS records in ${RUN_SECONDS}s (wall ${wall}s)"
    else
        why=$(grep -E -m1 'Error|error:' "$LOGS/main.stderr" | cut -c1-200 || true)
        [ "$rc" != 124 ] && [ "$rc" != 137 ] || why="timed out after ${RUN_TIMEOUT}s; $why"
        check FAIL "main on the clip" "exit $rc, ${RUN_FRAMES:-0}/$FRAMES frames: ${why:-see $LOGS/main.stderr}"
        tail -n 20 "$LOGS/main.stderr" | sed 's/^/    | /'
    fi
    result=$(validate "$LOGS/main.stdout" | tee "$LOGS/notify-check.txt" | tail -n 1)
    lines=$(sed -n 's/.*lines=\([0-9]*\).*/\1/p' <<<"$result")
    bad=$(sed -n 's/.*bad=\([0-9]*\).*/\1/p' <<<"$result")
    records=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$result")
    kinds=${result##*kinds=}
    if [ -z "$lines" ]; then
        check FAIL "notify lines vs data_schema.json" "validator failed: $(tail -n 3 "$LOGS/notify-check.txt" | tr '\n' ' ')"
    elif [ "$bad" != 0 ]; then
        check FAIL "notify lines vs data_schema.json" "$bad of $lines lines invalid: $(head -n 1 "$LOGS/notify-check.txt")"
    elif [ "$lines" = 0 ]; then
        check FAIL "notify lines vs data_schema.json" "no notify line on stdout (the clip shows hands)"
    else
        check PASS "notify lines vs data_schema.json" "$lines lines, $records records valid ($kinds)"
    fi
    if [ -e "$heartbeat_host" ] && [ "$(stat -c %Y "$heartbeat_host")" -ge "$run_start" ]; then
        check PASS "heartbeat touched" "HANDPOSE_HEARTBEAT=$CHECK_DIR/heartbeat, $(($(date +%s) - $(stat -c %Y "$heartbeat_host"))) s ago"
        hc=0
        "${CHROOT[@]}" "$HEALTH" >"$LOGS/healthchecker.log" 2>&1 || hc=$?
        if [ "$hc" = 0 ]; then
            check PASS "healthchecker (fresh heartbeat)" "exit 0"
        else
            check FAIL "healthchecker (fresh heartbeat)" "exit $hc (expected 0)"
        fi
    else
        check FAIL "heartbeat touched" "$CHECK_DIR/heartbeat not touched during the run"
        check FAIL "healthchecker (fresh heartbeat)" "not run: no heartbeat"
    fi
    hc=0
    "${CHROOT[@]}" env HANDPOSE_HEARTBEAT="$CHECK_DIR/no-such-heartbeat" "$HEALTH" \
        >>"$LOGS/healthchecker.log" 2>&1 || hc=$?
    if [ "$hc" != 0 ]; then
        check PASS "healthchecker (no heartbeat)" "exit $hc (unhealthy, as expected)"
    else
        check FAIL "healthchecker (no heartbeat)" "exit 0 without a heartbeat file"
    fi

    # SIGTERM: the looped clip, stopped once the heartbeat shows it is running
    rm -f "$heartbeat_host"
    note "main on the looped clip, then SIGTERM ..."
    term_start=$(date +%s)
    "${CHROOT[@]}" env PI_CHECK_LOOP=1 python3 "$CHECK_DIR/run_main.py" \
        >"$LOGS/sigterm.stdout" 2>"$LOGS/sigterm.stderr" &
    APP_PID=$!
    beat_seen=0
    while kill -0 "$APP_PID" 2>/dev/null && [ $(($(date +%s) - term_start)) -lt "$RUN_TIMEOUT" ]; do
        if [ -e "$heartbeat_host" ]; then
            beat_seen=1
            break
        fi
        sleep 1
    done
    if [ "$beat_seen" = 1 ]; then
        sleep 5 # a few frames into the run
        hc=0
        "${CHROOT[@]}" "$HEALTH" >>"$LOGS/healthchecker.log" 2>&1 || hc=$?
        if [ "$hc" = 0 ]; then
            check PASS "healthchecker (app running)" "exit 0"
        else
            check FAIL "healthchecker (app running)" "exit $hc"
        fi
        sent=$(date +%s%N)
        kill -TERM "$APP_PID"
        stopped=0
        for _ in $(seq 1 $((SIGTERM_TIMEOUT * 10))); do
            kill -0 "$APP_PID" 2>/dev/null || {
                stopped=1
                break
            }
            sleep 0.1
        done
        took_ms=$((($(date +%s%N) - sent) / 1000000))
        took=$((took_ms / 1000)).$(((took_ms % 1000) / 100))
        if [ "$stopped" = 1 ]; then
            rc=0
            wait "$APP_PID" || rc=$?
            APP_PID=""
            frames=$(field frames "$LOGS/sigterm.stderr")
            if [ "$rc" = 0 ] && ! grep -q Traceback "$LOGS/sigterm.stderr"; then
                check PASS "SIGTERM stops it" "exit 0 in ${took}s (after ${frames:-?} frames)"
            else
                check FAIL "SIGTERM stops it" "exit $rc in ${took}s: $(grep -m1 -E 'Error|error:' "$LOGS/sigterm.stderr" | cut -c1-160)"
            fi
        else
            check FAIL "SIGTERM stops it" "still running ${SIGTERM_TIMEOUT}s after SIGTERM (killed)"
        fi
    else
        rc=0
        wait "$APP_PID" || rc=$?
        APP_PID=""
        check FAIL "SIGTERM stops it" "the looped run ended (exit $rc) before its first heartbeat: $(grep -m1 -E 'Error|error:' "$LOGS/sigterm.stderr" | cut -c1-160)"
    fi

    # the real entry point: starts, reads the settings, stops on the missing camera
    rc=0
    timeout -k 30 "$RUN_TIMEOUT" "${CHROOT[@]}" "$MAIN" >"$LOGS/real-main.stdout" 2>"$LOGS/real-main.stderr" || rc=$?
    err=$(grep -m1 'handpose: error:' "$LOGS/real-main.stderr" | cut -c1-200 || true)
    if [ "$rc" = 2 ] && [ -n "$err" ] && ! grep -q Traceback "$LOGS/real-main.stderr"; then
        check PASS "$MAIN starts (no camera here)" "exit 2: $err"
    else
        check FAIL "$MAIN starts (no camera here)" "exit $rc: ${err:-$(tail -n 1 "$LOGS/real-main.stderr" | cut -c1-200)}"
    fi
else
    for name in "main on the clip" "notify lines vs data_schema.json" "heartbeat touched" \
        "healthchecker" "SIGTERM stops it" "$MAIN starts (no camera here)"; do
        check SKIP "$name" "not run: the install failed"
    done
fi

# 7. summary
{
    echo
    echo "================ pi_image_check summary: $TARGET ================"
    echo "target           $FIRMWARE ($ARCH, qemu-$QEMU user emulation)"
    echo "Debian           $OS_VERSION ($SUITE, debootstrap minbase from $MIRROR)"
    echo "apt suites       $SUITES_NOTE"
    echo "Raspberry Pi apt $RPI_NOTE"
    echo "python           $PY_VERSION (the app ran on ${APP_PY:-?})"
    echo "app              $REPO/app at $APP_REV, deployed to /root ($MAIN, $HEALTH)"
    echo "settings         $CHECK_DIR/act_settings.json from act_settings.json ($(cat "$LOGS/settings.txt"))"
    echo "source           first $FRAMES frames of app/handpose/assets/sample_clip.mp4 as PNG (decoded"
    echo "                 on the host; PyAV is not installed in the image), through the real main()"
    echo "dependencies     $DEPS_FILE ($DEPS_FORM), $INSTALL_NOTE"
    echo "  apt listed     ${APT_PKGS[*]:-(none)}"
    [ -z "$APT_MISSING" ] || echo "  apt missing    $APT_MISSING"
    echo "  apt added      python3-pip (the pip step needs it; the base image has no pip)"
    echo "  pip listed     ${PIP_PKGS[*]:-(none)}"
    echo "  pip command    python3 -m pip install --no-cache-dir ${PIP_BREAK[*]} <pip listed>"
    echo "apt versions (listed + python3, python3-pip):"
    awk '{print "  " $0}' <<<"$APT_VERSIONS"
    echo "pip freeze (what python3 sees):"
    awk '{print "  " $0}' <<<"$PIP_FREEZE"
    echo "interpreter      ${INTERPRETER:-?}"
    echo "frames           ${RUN_FRAMES:-0} of $FRAMES"
    echo "events           ${RUN_EVENTS:-0} records notified"
    echo "duration         main() ${RUN_SECONDS:-?} s; whole check $(($(date +%s) - T0)) s"
    echo "checks:"
    printf '  %s\n' "${CHECKS[@]}"
    echo "logs             $LOGS"
    if [ "$FAILED" = 0 ]; then echo "RESULT           PASS"; else echo "RESULT           FAIL"; fi
} | tee "$LOGS/summary.txt"
exit "$FAILED"
}

main "$@"
