#!/usr/bin/env bash
# Proof on arm64 without a Pi: a kiosk's and a display's first boot, offline, on aarch64.
# Run on demand (as root, on Debian; minutes under emulation), not in CI:
#
#   sudo provisioning/arm64_check.sh [WORK_DIR]        # default /var/tmp/mpp-arm64
#
# Needs: apt-get install qemu-user-static binfmt-support debootstrap; the network (for the
# Debian arm64 packages of the "image" and the Pi wheels of the bundles) until step 4.
#  1. debootstrap a Debian arm64 root (trixie: Python 3.13, as Raspberry Pi OS Trixie), once.
#  2. "The image": that root plus the Debian packages the kiosk and the display use, installed
#     while the network is on, as a Raspberry Pi OS image has them. Debian has no
#     python3-lgpio (Raspberry Pi's own archive has): a stand-in package is built here from
#     the lgpio sources on PyPI (0.2.2.0), with the same files.
#  3. Bundles of kiosk-1 (touchscreen kiosk; its USB printer swapped for a file printer, as no
#     USB printer is attached to a chroot) and tv-lobby-1 from the example inventory:
#     `mpp-provision bundle --target trixie`, wheels pinned by hash.
#  4. For each: a fresh copy of the image, the bundle on /boot/firmware/mpp, firstboot.sh under
#     qemu-aarch64 in a network namespace with no network at all (`unshare --net`). systemctl
#     and udevadm are recorders there: no systemd runs under qemu-user.
#  5. `mpp selftest --non-interactive` on each, with simulated pins (gpiozero's MockFactory)
#     and SDL's dummy video and audio, also offline.
# Every step prints its duration; docs/provisioning.md records a run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-/var/tmp/mpp-arm64}"
SUITE="${MPP_ARM64_SUITE:-trixie}"
MIRROR="${MPP_ARM64_MIRROR:-http://deb.debian.org/debian}"
PROVISION="${MPP_PROVISION:-$HERE/.venv/bin/mpp-provision}"
TARGET="${MPP_ARM64_TARGET:-trixie}"
read -r -a DEVICES <<<"${MPP_ARM64_DEVICES:-kiosk-1 tv-lobby-1}"
IMAGE_PACKAGES=(python3-pygame python3-evdev espeak-ng fonts-dejavu-core libusb-1.0-0)
BUILD_PACKAGES=(gcc swig python3-dev python3-setuptools)

START=$(date +%s)
step_start=$START
step() {
    local now
    now=$(date +%s)
    echo "== [$((now - START)) s, previous step $((now - step_start)) s] $*"
    step_start=$now
}
in_root() { local root="$1"; shift; chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot, unshare)"; exit 2; }
for tool in debootstrap qemu-aarch64-static update-binfmts unshare; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install qemu-user-static binfmt-support debootstrap"; exit 2; }
done
[ -x "$PROVISION" ] || { echo "no $PROVISION: run ./dev.sh test once (it makes .venv)"; exit 2; }
mkdir -p "$WORK"

step "binfmt: aarch64 programs run under qemu-aarch64-static"
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true

BASE="$WORK/base-$SUITE"
if [ ! -x "$BASE/usr/bin/python3" ]; then
    step "debootstrap --arch=arm64 --variant=minbase --include=python3 $SUITE"
    rm -rf "$BASE"
    debootstrap --arch=arm64 --variant=minbase --include=python3 "$SUITE" "$BASE" "$MIRROR" >"$WORK/debootstrap.log"
fi
echo "root says: $(in_root "$BASE" uname -m), $(in_root "$BASE" python3 --version)"

IMAGE="$WORK/image-$SUITE"
if [ ! -f "$IMAGE/.mpp-apt-done" ]; then
    step "the image: ${IMAGE_PACKAGES[*]} (network on)"
    rm -rf "$IMAGE"
    cp -a "$BASE" "$IMAGE"
    cp /etc/resolv.conf "$IMAGE/etc/resolv.conf"
    in_root "$IMAGE" apt-get update -qq
    in_root "$IMAGE" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${IMAGE_PACKAGES[@]}" "${BUILD_PACKAGES[@]}" >"$WORK/image-apt.log" 2>&1
    touch "$IMAGE/.mpp-apt-done"
fi
lacking=$(for p in "${IMAGE_PACKAGES[@]}"; do in_root "$IMAGE" dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q " installed$" || echo "$p"; done)
if [ -n "$lacking" ]; then
    step "the image: adding $lacking (network on)"
    in_root "$IMAGE" apt-get update -qq
    # shellcheck disable=SC2086
    in_root "$IMAGE" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $lacking >>"$WORK/image-apt.log" 2>&1
fi
if [ ! -f "$IMAGE/.mpp-image-done" ]; then
    step "the image: a python3-lgpio stand-in built from PyPI's lgpio 0.2.2.0 sources"
    rm -rf "$IMAGE/tmp/lgpio"
    "$HERE/.venv/bin/python" -m pip download -q --no-deps --no-binary :all: lgpio==0.2.2.0 -d "$IMAGE/tmp/lgpio"
    # The sources hold the C library (liblgpio, Raspberry Pi OS's liblgpio1) and the SWIG
    # binding that links to it: both go into the package, where Raspberry Pi OS has them.
    in_root "$IMAGE" bash -ec '
        cd /tmp/lgpio && tar xzf lgpio-0.2.2.0.tar.gz && cd lgpio-0.2.2.0
        lib=/usr/lib/aarch64-linux-gnu
        gcc -shared -fPIC -O2 -Isrc -o liblgpio.so.1 src/*.c -lpthread -lrt -Wl,-soname,liblgpio.so.1
        ln -sf liblgpio.so.1 liblgpio.so
        python3 setup.py -q build_ext --inplace -L. >/tmp/lgpio/build.log 2>&1 || { cat /tmp/lgpio/build.log; exit 1; }
        pkg=/tmp/python3-lgpio; dist=$pkg/usr/lib/python3/dist-packages
        rm -rf $pkg && mkdir -p $pkg/DEBIAN $dist $pkg$lib
        cp lgpio.py _lgpio*.so $dist/
        cp liblgpio.so.1 $pkg$lib/ && ln -s liblgpio.so.1 $pkg$lib/liblgpio.so
        printf "Package: python3-lgpio\nVersion: 0.2.2.0-0mpp1\nArchitecture: arm64\nMaintainer: MPP arm64 check <root@localhost>\nDepends: python3\nDescription: lgpio for Python 3 (stand-in built by provisioning/arm64_check.sh)\n" > $pkg/DEBIAN/control
        dpkg-deb --build --root-owner-group $pkg /tmp/python3-lgpio.deb >/dev/null
        dpkg -i /tmp/python3-lgpio.deb >/dev/null
        python3 -c "import lgpio; print(\"python3-lgpio stand-in:\", lgpio.__file__)"'
    in_root "$IMAGE" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove "${BUILD_PACKAGES[@]}" >>"$WORK/image-apt.log" 2>&1
    rm -rf "$IMAGE/tmp/lgpio" "$IMAGE/tmp/python3-lgpio" "$IMAGE/tmp/python3-lgpio.deb"
    touch "$IMAGE/.mpp-image-done"
fi
echo "image: $(du -sh "$IMAGE" | cut -f1), $(in_root "$IMAGE" dpkg-query -W -f='${binary:Package} ${Version}\n' python3 python3-pygame python3-lgpio espeak-ng | tr '\n' ';')"

step "bundles: ${DEVICES[*]} (--target $TARGET)"
SITE="$WORK/site"
rm -rf "$SITE" && mkdir -p "$SITE"
sed -e 's|^printer = { connection = "usb", vendor_id = 0x04b8, product_id = 0x0e15, profile = "TM-T20II" }$|printer = { connection = "file", path = "/var/lib/mpp/selftest-ticket.bin", profile = "TM-T20II" }|' \
    "$HERE/examples/banjarbaru.toml" >"$SITE/site.toml"
grep -q 'path = "/var/lib/mpp/selftest-ticket.bin"' "$SITE/site.toml" || { echo "kiosk-1's printer line changed in the example; update this script"; exit 1; }
"$PROVISION" --site "$SITE/site.toml" --secrets "$SITE/secrets" init --server mpp-server.local >/dev/null
for device in "${DEVICES[@]}"; do
    "$PROVISION" --site "$SITE/site.toml" --secrets "$SITE/secrets" bundle "$device" \
        --out "$SITE/bundles" --target "$TARGET" ${MPP_PACKAGE_WHEEL:+--package-wheel "$MPP_PACKAGE_WHEEL"}
    echo "$device bundle: $(du -sh "$SITE/bundles/$device" | cut -f1), $(ls "$SITE/bundles/$device/wheels" | wc -l) wheels"
done

RESULT=0
for device in "${DEVICES[@]}"; do
    ROOT="$WORK/root-$device"
    step "$device: first boot under qemu-aarch64, no network"
    rm -rf "$ROOT"
    cp -a "$IMAGE" "$ROOT"
    mkdir -p "$ROOT/boot/firmware"
    cp -r "$SITE/bundles/$device" "$ROOT/boot/firmware/mpp"
    for tool in systemctl udevadm; do  # no systemd under qemu-user: record what is asked
        printf '#!/bin/sh\necho "%s $*" >> /var/log/mpp-%s.log\n' "$tool" "$tool" >"$ROOT/usr/local/sbin/$tool"
        chmod 0755 "$ROOT/usr/local/sbin/$tool"
    done
    if unshare --net chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 bash /boot/firmware/mpp/firstboot.sh; then
        echo "$device first boot: OK"
    else
        echo "$device first boot: FAILED"; RESULT=1; continue
    fi
    echo "password left on the card: $(ls "$ROOT/boot/firmware/mpp/broker-password" 2>/dev/null || echo none)"
    echo "systemctl asked: $(tr '\n' ';' <"$ROOT/var/log/mpp-systemctl.log")"
    echo "venv: $(du -sh "$ROOT/opt/mpp/venv" | cut -f1); linked from Debian: $(find "$ROOT/opt/mpp/venv/lib" -maxdepth 3 -type l -printf '%f ' )"
    step "$device: mpp selftest --non-interactive, simulated pins, no network"
    if unshare --net chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/mpp \
        LANG=C.UTF-8 GPIOZERO_PIN_FACTORY=mock SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy \
        XDG_CACHE_HOME=/var/lib/mpp/cache \
        /opt/mpp/venv/bin/mpp selftest --site /etc/mpp/site.toml --device "$device" --non-interactive; then
        echo "$device selftest: exit 0"
    else
        echo "$device selftest: exit $?"; RESULT=1
    fi
done
step "done: $([ $RESULT = 0 ] && echo PASSED || echo FAILED)"
exit $RESULT
