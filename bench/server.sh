#!/usr/bin/env bash
# The fake SMTP server against real peers (BENCHMARKS.md sections 2 and 3): our server
# (`hil serve` with scenarios/plain-ok.toml), Postfix's smtp-sink and aiosmtpd, each
# loaded by Postfix's smtp-source at 1, 10 and 100 sessions with 1 KB and 1 MB
# messages; then peak RSS with 1,000 idle sessions. Loopback only, kernel-picked ports.
#
#   bench/server.sh            the whole bench (about 3 minutes), a Markdown report on
#                              stdout and in bench/.work/server.md
#   bench/server.sh --quick    a smoke test: one short run of each server (10 sessions,
#                              1 KB, 200 messages) and 50 idle sessions; exit 1 if any
#                              server or smtp-source failed (a few seconds after the build)
#   bench/server.sh --hil PATH ...   use this hil binary instead of building one
#   Any other option goes to bench/server.py (--seconds, --rounds, --sessions, --sizes,
#   --idle ...; see bench/server.py --help).
#
# Installs what is missing: postfix (for smtp-source and smtp-sink; its service is kept
# from starting) and python3-venv with apt-get, aiosmtpd (pinned) with pip into
# bench/.venv. Builds hil with `cargo build --release` (CARGO_TARGET_DIR is honoured).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$root/bench/.work}
venv=$root/bench/.venv
AIOSMTPD_VERSION=1.4.6

hil=
quick=0
pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --hil) hil=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) pass+=("$1"); shift ;;
  esac
done

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/smtp-sink ]; then
  echo "bench: installing postfix (smtp-source, smtp-sink)" >&2
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Keep Postfix's service from starting during the install.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install postfix
  if trap -p EXIT | grep -q policy-rc.d; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi
command -v python3 >/dev/null || apt_install python3
if ! "$venv/bin/python" -c "import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != '$AIOSMTPD_VERSION')" 2>/dev/null; then
  echo "bench: installing aiosmtpd $AIOSMTPD_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
fi

if [ -z "$hil" ]; then
  (cd "$root" && cargo build --release --locked -q -p hil --bin hil)
  hil=${CARGO_TARGET_DIR:-$root/target}/release/hil
fi

rm -rf "$work"
mkdir -p "$work"
args=(--hil "$hil" --scenario "$root/scenarios/plain-ok.toml"
      --aiosmtpd-python "$venv/bin/python" --work "$work" --out "$work/server.md")
if [ "$quick" = 1 ]; then
  args+=(--sessions 10 --sizes "1 KB" --messages 200 --rounds 1 --idle 50)
fi
cd "$root"
exec python3 "$root/bench/server.py" "${args[@]}" "${pass[@]}"
