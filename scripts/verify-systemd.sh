#!/usr/bin/env bash
# Check the files in systemd/ with systemd's own tools: `systemd-analyze verify` of the unit
# (alone and with the capture drop-in), its `systemd-analyze security` exposure, and the
# sysusers and tmpfiles files applied to a scratch root. The unit's /usr/bin/ebok is pointed
# at the built binary, since verify insists that ExecStart exists.
# Usage: scripts/verify-systemd.sh [PATH_TO_EBOK]  (default: $CARGO_TARGET_DIR or target,
# debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/ebok}"
bin="$(realpath "$bin")"
[ -x "$bin" ] || { echo "verify-systemd: no ebok binary at $bin (build it first)" >&2; exit 1; }
command -v systemd-analyze >/dev/null || {
  echo "verify-systemd: systemd-analyze missing (Debian package systemd)" >&2
  exit 1
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
units="$scratch/units"
mkdir -p "$units/ebok.service.d"
sed "s#/usr/bin/ebok#$bin#g" systemd/ebok.service >"$units/ebok.service"

# verify prints problems (unknown keys, bad values, missing binaries) and fails on them.
check_verify() {
  local out
  out="$(cd "$units" && SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify ebok.service 2>&1)" || {
    echo "$out" >&2
    return 1
  }
  # Lines about other units on this machine are not ours.
  if grep -v '^/lib/systemd/\|^/usr/lib/systemd/\|^/etc/systemd/' <<<"$out" | grep -q .; then
    echo "$out" >&2
    return 1
  fi
}
check_verify
echo "verify-systemd: systemd-analyze verify ebok.service: ok"
exposure() {
  (cd "$units" && SYSTEMD_UNIT_PATH="$units:" systemd-analyze security --offline=yes ebok.service 2>/dev/null) |
    sed -n 's/.*Overall exposure level for ebok.service: \([0-9.]*\).*/\1/p'
}
echo "verify-systemd: exposure $(exposure) (systemd-analyze security --offline=yes)"

cp systemd/ebok.service.d/capture.conf "$units/ebok.service.d/"
check_verify
echo "verify-systemd: ebok.service + capture.conf drop-in: ok, exposure $(exposure)"

root="$scratch/root"
mkdir -p "$root/etc/ebok"
cp systemd/ebok.toml "$root/etc/ebok/ebok.toml"
out="$(systemd-sysusers --root="$root" "$PWD/systemd/ebok.sysusers" 2>&1)" || { echo "$out" >&2; exit 1; }
grep -q '^ebok:' "$root/etc/passwd"
out="$(systemd-tmpfiles --root="$root" --create "$PWD/systemd/ebok.tmpfiles" 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
for d in var/lib/ebok var/lib/ebok/outbox var/lib/ebok/mail-queue; do
  [ -d "$root/$d" ] || { echo "verify-systemd: tmpfiles did not create /$d" >&2; exit 1; }
done
[ "$(stat -c %a "$root/etc/ebok/ebok.toml")" = 640 ] || {
  echo "verify-systemd: /etc/ebok/ebok.toml is not 0640 after tmpfiles" >&2
  exit 1
}
echo "verify-systemd: sysusers and tmpfiles: ok"
