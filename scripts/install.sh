#!/bin/sh
# Installs tpctl on this host, then runs `tpctl install` with this script's arguments:
#
#   curl -sfL <release-url>/install.sh | sh -s - [tpctl install flags]
#
# It downloads two files and nothing else: tpctl-linux-<arch> and SHA256SUMS, from
# TPCTL_BASE_URL (default below; http(s)://, or file:///dir for an air-gapped host
# with the release files copied into dir). The binary's sha256 is checked against
# SHA256SUMS before anything runs; it then replaces /usr/local/bin/tpctl atomically.
# K3s, its images and the charts are inside tpctl.
#
# Exit codes before tpctl runs (after that, tpctl install's own: 0, 1, 2, 3, 130):
#   10  not root
#   11  unsupported architecture (tpctl is built for amd64 and arm64)
#   12  download failed
#   13  checksum mismatch (or SHA256SUMS has no entry for the binary)
#   14  a needed tool is missing (curl or wget; sha256sum)
#   15  the binary could not be written to /usr/local/bin
set -eu

TPCTL_BASE_URL=${TPCTL_BASE_URL:-https://github.com/tpctl/tpctl/releases/latest/download}
bindir=/usr/local/bin

die() { code=$1; shift; echo "tpctl install.sh: $*" >&2; exit "$code"; }

sha() { # file -> "digest  -"
  if command -v sha256sum >/dev/null 2>&1; then sha256sum <"$1"
  elif command -v busybox >/dev/null 2>&1; then busybox sha256sum <"$1"
  else die 14 "sha256sum is missing (coreutils or busybox)"
  fi
}

fetch() { # url file
  case $1 in
    file://*) cp "${1#file://}" "$2" ;;
    *)
      if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 -o "$2" "$1"
      elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
      else die 14 "curl or wget is needed to download $1"
      fi ;;
  esac || die 12 "download of $1 failed"
}

# Everything runs from main, so a download of this script cut short runs nothing.
main() {
  [ "$(id -u)" = 0 ] || die 10 "must run as root (try: curl -sfL <url>/install.sh | sudo sh -s - ...)"

  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die 11 "unsupported architecture $(uname -m): tpctl is built for x86_64 (amd64) and aarch64 (arm64)" ;;
  esac
  name=tpctl-linux-$arch
  base=${TPCTL_BASE_URL%/}

  sums='' tmp=''
  trap 'rm -f "$sums" "$tmp"' EXIT
  trap 'exit 130' HUP INT TERM
  sums=$(mktemp)
  fetch "$base/SHA256SUMS" "$sums"
  want=''
  while read -r sum file; do
    [ "$file" = "$name" ] || [ "$file" = "*$name" ] || continue
    want=$sum
  done <"$sums"
  case $want in *[!0-9a-f]*) want='' ;; esac
  [ ${#want} -eq 64 ] || die 13 "SHA256SUMS at $base has no valid entry for $name"

  got=''
  [ -f "$bindir/tpctl" ] && got=$(sha "$bindir/tpctl")
  if [ "${got%% *}" = "$want" ]; then
    echo "tpctl install.sh: $bindir/tpctl is already $name ($want)"
  else
    mkdir -p "$bindir" || die 15 "cannot create $bindir"
    tmp=$(mktemp "$bindir/.tpctl.XXXXXX") || die 15 "cannot write to $bindir"
    echo "tpctl install.sh: downloading $base/$name"
    fetch "$base/$name" "$tmp"
    got=$(sha "$tmp")
    [ "${got%% *}" = "$want" ] || die 13 "checksum mismatch for $name: got ${got%% *}, SHA256SUMS says $want; nothing was installed"
    chmod 0755 "$tmp" || die 15 "cannot make $tmp executable"
    mv -f "$tmp" "$bindir/tpctl" || die 15 "cannot move $tmp to $bindir/tpctl"
    echo "tpctl install.sh: installed $bindir/tpctl ($want)"
  fi
  rm -f "$sums"
  trap - EXIT HUP INT TERM
  exec "$bindir/tpctl" install "$@"
}

main "$@"
