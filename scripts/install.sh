#!/bin/sh
# Installs tpctl on this host, then runs `tpctl install` with this script's arguments:
#
#   curl -sfL <release-url>/install.sh | sh -s - [tpctl install flags]
#
# It downloads three files and nothing else: SHA256SUMS, its signature SHA256SUMS.sig and
# tpctl-linux-<arch>, from TPCTL_BASE_URL (default below; https://, http:// only on
# loopback, or file:///dir for an air-gapped host with the release files copied into dir).
# Before anything is installed: SHA256SUMS's signature must verify (openssl) with one of
# the release keys below, and SHA256SUMS and the binary must have the digests below (this
# script is written for one release by scripts/release). It then replaces
# /usr/local/bin/tpctl atomically. K3s, its images and the charts are inside tpctl.
# An installed tpctl newer than this release is kept unless TPCTL_ALLOW_DOWNGRADE=1.
#
# Exit codes before tpctl runs (after that, tpctl install's own: 0, 1, 2, 3, 130):
#   10  not root
#   11  unsupported architecture (tpctl is built for amd64 and arm64)
#   12  download failed
#   13  checksum mismatch (SHA256SUMS or the binary differs from this script's digests)
#   14  a needed tool is missing (curl or wget; sha256sum; openssl)
#   15  the binary could not be written to /usr/local/bin
#   16  signature missing (no SHA256SUMS.sig)
#   17  bad signature (SHA256SUMS is not signed by a release key this script carries)
#   18  downgrade refused (the installed tpctl is newer; TPCTL_ALLOW_DOWNGRADE=1 allows it)
#   19  insecure base URL (not https://, file://, or http:// on loopback)
#   20  this script is not from a release (it carries no release keys or digests)
# Nothing is installed when any of these is refused.
set -eu

TPCTL_BASE_URL=${TPCTL_BASE_URL:-https://github.com/tpctl/tpctl/releases/latest/download}
# Written by scripts/release: the release, its keys (base64 DER SubjectPublicKeyInfo,
# Ed25519: the current and the next), and each binary's sha256.
release_version=''
release_keys=''
sha256_amd64=''
sha256_arm64=''
bindir=/usr/local/bin

die() { code=$1; shift; echo "tpctl install.sh: $*" >&2; exit "$code"; }
have() { command -v "$1" >/dev/null 2>&1; }

sha() { # file -> "digest  -"
  if have sha256sum; then sha256sum <"$1"
  elif have busybox; then busybox sha256sum <"$1"
  else die 14 "sha256sum is missing (coreutils or busybox)"
  fi
}

fetch() { # url file [exit code]
  case $1 in
    file://*) cp "${1#file://}" "$2" ;;
    https://*) if have curl; then curl -fsSL --retry 3 --proto =https --proto-redir =https -o "$2" "$1"; else wget -q -O "$2" "$1"; fi ;;
    *) if have curl; then curl -fsSL --retry 3 -o "$2" "$1"; else wget -q -O "$2" "$1"; fi ;;
  esac || die "${3:-12}" "download of $1 failed"
}

check_url() { # base: https, file, or http on 127.0.0.0/8, ::1, localhost
  case $1 in
    https://* | file://*) return 0 ;;
    http://*) host=${1#http://} ;;
    *) die 19 "TPCTL_BASE_URL $1: not https://, file://, or http:// on loopback" ;;
  esac
  host=${host%%[/?#]*}; host=${host##*@}
  case $host in
    \[::1\] | \[::1\]:*) return 0 ;;
    \[*) ;;
    *) host=${host%:*}
       [ "$host" = localhost ] && return 0
       case $host in *[!0-9.]*) ;; 127.*.*.*) return 0 ;; esac ;;
  esac
  die 19 "TPCTL_BASE_URL $1: plain http:// is refused except on loopback (use https://)"
}

semver() { # v1.2.3[-suffix] -> "1 2 3"; fails on anything else
  v=${1#v}; v=${v%%[-+]*}
  case $v in '' | *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
  old=$IFS; IFS=.
  # shellcheck disable=SC2086 # split on dots
  set -- $v
  IFS=$old
  [ $# -eq 3 ] && echo "$1 $2 $3"
}

newer() { # a b: a's major.minor.patch above b's
  a=$(semver "$1") && b=$(semver "$2") || return 1
  # shellcheck disable=SC2086 # six numbers
  set -- $a $b
  [ "$1" -gt "$4" ] || { [ "$1" -eq "$4" ] && { [ "$2" -gt "$5" ] || { [ "$2" -eq "$5" ] && [ "$3" -gt "$6" ]; }; }; }
}

# Everything runs from main, so a download of this script cut short runs nothing.
main() {
  [ "$(id -u)" = 0 ] || die 10 "must run as root (try: curl -sfL <url>/install.sh | sudo sh -s - ...)"
  { [ -n "$release_keys" ] && [ -n "$release_version" ]; } ||
    die 20 "this install.sh carries no release keys: use the install.sh published with a release"

  case $(uname -m) in
    x86_64 | amd64) arch=amd64 want=$sha256_amd64 ;;
    aarch64 | arm64) arch=arm64 want=$sha256_arm64 ;;
    *) die 11 "unsupported architecture $(uname -m): tpctl is built for x86_64 (amd64) and aarch64 (arm64)" ;;
  esac
  name=tpctl-linux-$arch
  [ -n "$want" ] || die 11 "release $release_version has no $name"
  base=${TPCTL_BASE_URL%/}
  check_url "$base"
  case $base in file://*) ;; *) have curl || have wget || die 14 "curl or wget is needed to download from $base" ;; esac
  have openssl || die 14 "openssl is needed to verify the release signature"

  work='' tmp=''
  trap 'rm -rf "$work" "$tmp"' EXIT
  trap 'exit 130' HUP INT TERM
  work=$(mktemp -d)
  sums=$work/SHA256SUMS
  fetch "$base/SHA256SUMS" "$sums"
  fetch "$base/SHA256SUMS.sig" "$work/sig" 16
  [ -s "$work/sig" ] || die 16 "SHA256SUMS.sig at $base is empty"
  listed=''
  while read -r sum file; do
    [ "$file" = "$name" ] || [ "$file" = "*$name" ] || continue
    listed=$sum
  done <"$sums"
  [ "$listed" = "$want" ] || die 13 "checksum mismatch: SHA256SUMS at $base lists '$listed' for $name, release $release_version has $want"
  ok=''
  for key in $release_keys; do
    printf -- '-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n' "$key" >"$work/key.pem"
    if openssl pkeyutl -verify -pubin -inkey "$work/key.pem" -rawin -in "$sums" -sigfile "$work/sig" >/dev/null 2>&1; then
      ok=1; break
    fi
  done
  [ -n "$ok" ] || die 17 "the signature of SHA256SUMS at $base does not verify with the release keys of $release_version; nothing was installed"

  got=''
  [ -f "$bindir/tpctl" ] && got=$(sha "$bindir/tpctl")
  if [ "${got%% *}" = "$want" ]; then
    echo "tpctl install.sh: $bindir/tpctl is already $name $release_version ($want)"
  else
    if [ -x "$bindir/tpctl" ] && [ "${TPCTL_ALLOW_DOWNGRADE:-}" != 1 ]; then
      installed=$("$bindir/tpctl" version 2>/dev/null | { read -r _ v _ && echo "$v"; }) || installed=''
      if newer "$installed" "$release_version"; then
        die 18 "$bindir/tpctl is $installed, newer than $release_version: not downgraded (TPCTL_ALLOW_DOWNGRADE=1 to install it anyway)"
      fi
    fi
    mkdir -p "$bindir" || die 15 "cannot create $bindir"
    tmp=$(mktemp "$bindir/.tpctl.XXXXXX") || die 15 "cannot write to $bindir"
    echo "tpctl install.sh: downloading $base/$name ($release_version)"
    fetch "$base/$name" "$tmp"
    got=$(sha "$tmp")
    [ "${got%% *}" = "$want" ] || die 13 "checksum mismatch for $name: got ${got%% *}, release $release_version has $want; nothing was installed"
    chmod 0755 "$tmp" || die 15 "cannot make $tmp executable"
    mv -f "$tmp" "$bindir/tpctl" || die 15 "cannot move $tmp to $bindir/tpctl"
    echo "tpctl install.sh: installed $bindir/tpctl $release_version ($want)"
  fi
  rm -rf "$work"
  trap - EXIT HUP INT TERM
  exec "$bindir/tpctl" install "$@"
}

main "$@"
