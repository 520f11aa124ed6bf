#!/usr/bin/env bash
# Set up this checkout on a fresh machine and run it.
#   ./dev.sh demo    install what is missing, then run a whole MPP on this machine
#   ./dev.sh test    install what is missing, then ruff (lint, format) and the whole test suite
#   ./dev.sh lint    only ruff check and ruff format --check (what `test` runs first)
# As root it installs the Debian packages it needs (mosquitto, espeak-ng, sox, chromium, ...);
# it always makes ./.venv with this package and its test tools. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(mosquitto mosquitto-clients espeak-ng sox chromium cloud-init systemd iproute2 postgresql
    libfaketime python3-blinker iptables)

need_apt() {
    local missing=()
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v soxi >/dev/null || missing+=(sox)
    if [ "${1:-}" = test ]; then
        command -v chromium >/dev/null || missing+=(chromium)
        command -v cloud-init >/dev/null || missing+=(cloud-init)
        command -v systemd-analyze >/dev/null || missing+=(systemd)
        command -v ip >/dev/null || missing+=(iproute2)
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
        compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || missing+=(libfaketime)
        command -v iptables-legacy >/dev/null || missing+=(iptables)
        # A Debian Python package that first boot's test links into a venv (for python3-lgpio).
        [ -d /usr/lib/python3/dist-packages/blinker ] || missing+=(python3-blinker)
    fi
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    echo "${missing[@]:-}"
}

install_system() {
    local missing
    missing=$(need_apt "$1")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Debian packages: $missing"
        apt-get update -q
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
        echo "== missing Debian packages: $missing (run as root, or: sudo apt-get install $missing)"
    fi
}

install_python() {
    local stamp=.venv/.installed
    if [ ! -x .venv/bin/python ]; then
        echo "== creating .venv"
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "== installing the package into .venv"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e '.[test]'
        touch "$stamp"
    fi
}

lint() {
    echo "== ruff check; ruff format --check"
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
}

cmd=${1:-}
shift || true
case "$cmd" in
    test)
        install_system test
        install_python
        lint  # a finding fails in seconds, before the suite's minutes
        # Three workers on two cores: most tests wait on brokers, hubs and browsers, not the CPU.
        # The slowest tests are named at the end: what to look at when the suite grows long.
        # --maxschedchunk=1: xdist hands tests out a few at a time; its default first hands
        # each worker a quarter of its share in one run of the collection, and the slow tests
        # (ordered first, tests/conftest.py) all went to one worker: a 4-minute tail.
        exec .venv/bin/python -m pytest -n "${MPP_TEST_WORKERS:-3}" --maxschedchunk=1 \
            --durations=15 "$@"
        ;;
    demo)
        install_system demo
        install_python
        exec .venv/bin/mpp demo "$@"
        ;;
    lint)
        lint
        ;;
    *)
        sed -n '2,7p' "$0"
        exit 2
        ;;
esac
