#!/usr/bin/env bash
# The IPVS lab: a real IPVS kernel (Debian's cloud kernel) under qemu, as a judge for lvsdoctor.
#
#   test/ipvs-lab/lab.sh build               fetch the kernel package, build the initramfs (cached)
#   test/ipvs-lab/lab.sh run [SCENARIO...]   build if needed, boot once, run the scenarios (all by default),
#                                            results in test/ipvs-lab/.cache/results/<scenario>/...
#   test/ipvs-lab/lab.sh list                the scenario names
#
# Exit codes: 0 done (the scenarios' outcomes are in outcome.json, whatever they are); 1 the VM ran but
# results are missing or damaged; 3 the lab cannot run here (no qemu, no kernel package, missing tool).
# Environment: IPVS_LAB_CACHE (default test/ipvs-lab/.cache), IPVS_LAB_TIMEOUT (seconds for the VM, 540),
# IPVS_LAB_SMP (vCPUs, default 1), IPVS_LAB_QEMU (the qemu binary), IPVS_LAB_APPEND (extra kernel arguments,
# default norandmaps), IPVS_LAB_EXTRA (a directory of more scenario scripts, e.g. generated ones: they go into
# the VM beside scenarios/ and run with them), IPVS_LAB_RESULTS (where the results go, default CACHE/results).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${IPVS_LAB_CACHE:-$HERE/.cache}
EXTRA=${IPVS_LAB_EXTRA:-}
RESULTS=${IPVS_LAB_RESULTS:-$CACHE/results}
TIMEOUT=${IPVS_LAB_TIMEOUT:-540}
SMP=${IPVS_LAB_SMP:-1}
# norandmaps: without address-space randomisation qemu reuses its translations of ip, python, ... across
# processes; the scenarios run about twice as fast
APPEND_EXTRA=${IPVS_LAB_APPEND:-norandmaps}
QEMU=${IPVS_LAB_QEMU:-qemu-system-x86_64}
# Debian's python3 (not a pyenv or venv one: its standard library is copied from /usr/lib/pythonX.Y)
PYTHON=$(readlink -f /usr/bin/python3 2>/dev/null || echo /usr/bin/python3)
# host programs copied into the VM (with their shared libraries)
HOST_PROGS=(/usr/sbin/ip /usr/bin/ss /usr/sbin/ipvsadm /usr/sbin/xtables-nft-multi /usr/sbin/nft /usr/sbin/conntrack
  /usr/sbin/sysctl /usr/bin/kmod "$PYTHON" /usr/bin/busybox /usr/bin/dash)
XT_NAMES=(iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore
  iptables-nft iptables-nft-save iptables-nft-restore ip6tables-nft ip6tables-nft-save ip6tables-nft-restore)
# kernel module directories whose modules (and their dependencies) go into the VM
MOD_DIRS=(net/netfilter net/ipv4 net/ipv6 net/bridge drivers/net/veth.ko drivers/net/dummy.ko)

say() { echo "lab: $*" >&2; }
cannot() { say "CANNOT RUN: $*"; exit 3; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

need_tools() {
  local t missing=()
  for t in "$QEMU" apt-get apt-cache dpkg-deb depmod cpio ldd base64 sha256sum; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  for t in "${HOST_PROGS[@]}"; do [ -x "$t" ] || missing+=("$t"); done
  [ -d /usr/lib/x86_64-linux-gnu/xtables ] || missing+=(/usr/lib/x86_64-linux-gnu/xtables)
  [ ${#missing[@]} -eq 0 ] || cannot "missing on this machine: ${missing[*]} (scripts/install.sh --test installs qemu-system-x86, busybox-static, cpio, kmod, iproute2, ipvsadm, iptables, nftables, conntrack, procps, python3)"
}

# The kernel image package linux-image-cloud-amd64 depends on, downloaded and unpacked once.
fetch_kernel() {
  local pkg deb t0
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}' || true)
  if [ -z "$pkg" ]; then
    say "apt-cache knows no linux-image-cloud-amd64; running apt-get update"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq >&2 || true
    elif command -v sudo >/dev/null; then sudo -n apt-get update -qq >&2 || true; fi
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}' || true)
  fi
  if [ -z "$pkg" ]; then
    # offline: reuse whatever was fetched before
    pkg=$(ls "$CACHE/kernel" 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$pkg" ] || cannot "no kernel package: apt knows no linux-image-cloud-amd64 (is this Debian with deb.debian.org reachable?) and nothing is cached in $CACHE/kernel"
    say "using cached kernel $pkg (apt cannot resolve linux-image-cloud-amd64)"
  fi
  KPKG=$pkg
  KROOT=$CACHE/kernel/$pkg
  if [ ! -f "$KROOT/.done" ]; then
    t0=$(now)
    mkdir -p "$CACHE/deb"
    deb=$(ls "$CACHE/deb/${pkg}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
      (cd "$CACHE/deb" && apt-get download "$pkg" >&2 2>"$CACHE/deb/apt.err") ||
        cannot "apt-get download $pkg failed: $(grep -v '^W: Download is performed unsandboxed' "$CACHE/deb/apt.err" | tail -3)"
      deb=$(ls "$CACHE/deb/${pkg}_"*.deb | head -1)
    fi
    TIMING_DOWNLOAD=$(secs "$t0" "$(now)")
    rm -rf "$KROOT.tmp" && mkdir -p "$KROOT.tmp"
    dpkg-deb -x "$deb" "$KROOT.tmp"
    rm -rf "$KROOT" && mv "$KROOT.tmp" "$KROOT" && touch "$KROOT/.done"
  fi
  KVER=$(ls "$KROOT/lib/modules" | head -1)
  VMLINUZ=$KROOT/boot/vmlinuz-$KVER
  [ -f "$VMLINUZ" ] || cannot "$VMLINUZ missing in the kernel package $pkg"
}

# copy_elf FILE: FILE and every shared library it needs, at the same paths under $ROOT (merged /usr).
copy_elf() {
  local f=$1 lib dst
  dst=$ROOT/$(usrpath "$f")
  mkdir -p "$(dirname "$dst")"
  [ -e "$dst" ] || cp -L "$f" "$dst"
  for lib in $(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\/.*ld-linux/{print $1}'); do
    dst=$ROOT/$(usrpath "$lib")
    [ -e "$dst" ] && continue
    mkdir -p "$(dirname "$dst")"
    cp -L "$lib" "$dst"
  done
}
usrpath() { case $1 in /usr/*) echo "${1#/}" ;; /lib/* | /lib64/* | /bin/* | /sbin/*) echo "usr$1" ;; *) echo "${1#/}" ;; esac; }

build_base() {
  local key t0 kdir m mods f
  # the image changes with: the kernel, this builder, the module list, lab.py (its imports), the host programs
  key=$( (echo "$KPKG ${HOST_PROGS[*]} ${XT_NAMES[*]} ${MOD_DIRS[*]}"; declare -f build_base copy_elf usrpath
    cat "$HERE/guest/modules.txt" "$HERE/guest/lab.py"
    for f in "${HOST_PROGS[@]}"; do ls -lL "$f"; done) | sha256sum | cut -c1-16)
  BASE=$CACHE/base-$key.cpio
  [ -f "$BASE" ] && return 0
  t0=$(now)
  say "building the VM base image ($BASE)"
  ROOT=$CACHE/root
  rm -rf "$ROOT" && mkdir -p "$ROOT"/{usr/bin,usr/sbin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,etc,lab,results}
  ln -s usr/bin "$ROOT/bin"; ln -s usr/sbin "$ROOT/sbin"; ln -s usr/lib "$ROOT/lib"; ln -s usr/lib64 "$ROOT/lib64"
  mkdir -p "$ROOT/var" && ln -s ../run "$ROOT/var/run"
  for f in "${HOST_PROGS[@]}"; do copy_elf "$f"; done
  for f in /usr/lib/x86_64-linux-gnu/xtables/*.so; do copy_elf "$f"; done
  for f in "${XT_NAMES[@]}"; do ln -sf xtables-nft-multi "$ROOT/usr/sbin/$f"; done
  for f in modprobe insmod rmmod lsmod depmod modinfo; do ln -sf ../bin/kmod "$ROOT/usr/sbin/$f"; done
  ln -sf "$(basename "$PYTHON")" "$ROOT/usr/bin/python3"
  # the shell is dash: busybox's ash would run its own applets (ip, sysctl, modprobe) before the real programs
  ln -sf dash "$ROOT/usr/bin/sh"
  # busybox applets for everything the host programs do not provide
  for f in $(/usr/bin/busybox --list); do
    [ -e "$ROOT/usr/sbin/$f" ] || [ -e "$ROOT/usr/bin/$f" ] || ln -s busybox "$ROOT/usr/bin/$f"
  done
  for f in /etc/protocols /etc/services /etc/ethertypes /etc/nsswitch.conf; do [ -f "$f" ] && cp "$f" "$ROOT/etc/"; done
  for f in /etc/iproute2 /usr/share/iproute2 /usr/lib/iproute2; do [ -d "$f" ] && mkdir -p "$ROOT$(dirname "$f")" && cp -r "$f" "$ROOT$f"; done
  echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
  echo "root:x:0:" >"$ROOT/etc/group"
  # python: the modules lab.py loads (listed by running it here), the encodings package, lib-dynload stubs
  # (with their compiled __pycache__ files, mtimes kept so that python uses them)
  local pylib pytag
  pylib=$("$PYTHON" -I -S -c 'import os; print(os.path.dirname(os.__file__))')
  pytag=$("$PYTHON" -I -S -c 'import sys; print(sys.implementation.cache_tag)')
  for f in $("$PYTHON" -I -S "$HERE/guest/lab.py" imports | grep "^$pylib/"); do
    mkdir -p "$ROOT$(dirname "$f")"; cp -p "$f" "$ROOT$f"
    case $f in
      *.so) copy_elf "$f" ;;
      *.py) pyc=$(dirname "$f")/__pycache__/$(basename "$f" .py).$pytag.pyc
        [ -f "$pyc" ] && mkdir -p "$ROOT$(dirname "$pyc")" && cp -p "$pyc" "$ROOT$pyc" ;;
    esac
  done
  cp -rp "$pylib/encodings" "$ROOT$pylib/"
  mkdir -p "$ROOT$pylib/lib-dynload"
  # kernel modules: MOD_DIRS and their dependencies, indexed with depmod -b
  kdir=$KROOT/lib/modules/$KVER
  [ -f "$kdir/modules.dep" ] || depmod -b "$KROOT" "$KVER"
  mods=()
  for m in "${MOD_DIRS[@]}"; do
    while IFS= read -r f; do mods+=("$(basename "$f" .ko)"); done < <(find "$kdir/kernel/$m" -name '*.ko')
  done
  modprobe -d "$KROOT" -S "$KVER" --show-depends -a "${mods[@]}" 2>/dev/null | awk '$1=="insmod"{print $2}' | sort -u |
    while IFS= read -r f; do
      mkdir -p "$ROOT$(dirname "${f#$KROOT}")"
      cp "$f" "$ROOT${f#$KROOT}"
    done
  cp "$kdir"/modules.{order,builtin,builtin.modinfo} "$ROOT/lib/modules/$KVER/"
  depmod -b "$ROOT" "$KVER"
  (cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) >"$BASE.tmp"
  mv "$BASE.tmp" "$BASE"
  rm -rf "$ROOT"
  find "$CACHE" -maxdepth 1 -name 'base-*.cpio' ! -name "$(basename "$BASE")" -delete
  TIMING_BUILD=$(secs "$t0" "$(now)")
  say "base image $(du -h "$BASE" | cut -f1) built in ${TIMING_BUILD}s"
}

build_lab() {
  local stage=$CACHE/lab-stage
  rm -rf "$stage" && mkdir -p "$stage/lab/scenarios"
  cp "$HERE/guest/init" "$stage/init"
  cp "$HERE/guest/lib.sh" "$HERE/guest/run-scenario.sh" "$HERE/guest/lab.py" "$HERE/guest/modules.txt" "$stage/lab/"
  cp "$HERE/scenarios/"*.sh "$stage/lab/scenarios/"
  if [ -n "$EXTRA" ]; then
    for f in "$EXTRA"/*.sh; do
      [ -e "$f" ] || continue
      [ -e "$stage/lab/scenarios/$(basename "$f")" ] && { say "$f has the name of a scenario of scenarios/"; exit 2; }
      cp "$f" "$stage/lab/scenarios/"
    done
  fi
  chmod +x "$stage/init" "$stage/lab/"*.sh
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) >"$CACHE/lab.cpio"
  cat "$BASE" "$CACHE/lab.cpio" >"$CACHE/initrd.cpio"
  rm -rf "$stage"
}

build() {
  need_tools
  mkdir -p "$CACHE"
  TIMING_DOWNLOAD=0 TIMING_BUILD=0
  local t0; t0=$(now)
  fetch_kernel
  build_base
  build_lab
  TIMING_PREPARE=$(secs "$t0" "$(now)")
}

run() {
  local only out t0 t1 rc s
  for s in "$@"; do
    [ -f "$HERE/scenarios/$s.sh" ] || { [ -n "$EXTRA" ] && [ -f "$EXTRA/$s.sh" ]; } || { say "no scenario $s (lab.sh list names them)"; exit 2; }
  done
  build
  only=$(IFS=,; echo "$*")
  out=$CACHE/run
  rm -rf "$out" "$RESULTS" && mkdir -p "$out"
  say "booting $KPKG under qemu (TCG), scenarios: ${only:-all}"
  t0=$(now)
  set +e
  timeout --kill-after=10 "$TIMEOUT" "$QEMU" -accel tcg -cpu max -smp "$SMP" -m 1024 -nographic \
    -no-reboot -monitor none -serial "file:$out/console.log" -serial "file:$out/results.b64" \
    -kernel "$VMLINUZ" -initrd "$CACHE/initrd.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 $APPEND_EXTRA lab.only=$only" -nic none >"$out/qemu.out" 2>&1
  rc=$?
  set -e
  t1=$(now)
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && { say "the VM did not finish within ${TIMEOUT}s; console tail:"; tail -20 "$out/console.log" >&2; exit 1; }
  [ $rc -eq 0 ] || { say "qemu failed (exit $rc): $(tail -5 "$out/qemu.out")"; tail -20 "$out/console.log" >&2; exit 3; }
  extract "$out"
  local boot
  boot=$(awk -F'[:,]' '/"initAt"/{for(i=1;i<=NF;i++) if($i ~ /initAt/) {print $(i+1); exit}}' "$RESULTS/guest.json")
  cat >"$RESULTS/host.json" <<EOF
{"kernelPackage":"$KPKG","kernelVersion":"$KVER","download":$TIMING_DOWNLOAD,"build":$TIMING_BUILD,"prepare":$TIMING_PREPARE,"vm":$(secs "$t0" "$t1"),"bootToInit":${boot:-null}}
EOF
  say "VM ran $(secs "$t0" "$t1")s (download ${TIMING_DOWNLOAD}s, build ${TIMING_BUILD}s, prepare ${TIMING_PREPARE}s); results in $RESULTS"
  grep '^lab:' "$out/console.log" | sed 's/\r$//' >&2 || true
}

extract() {
  local out=$1 hdr size sum
  tr -d '\r' <"$out/results.b64" >"$out/results.txt"
  hdr=$(grep -m1 '^=====LAB-RESULTS-BEGIN' "$out/results.txt" || true)
  [ -n "$hdr" ] || { say "no results from the VM; console tail:"; tail -30 "$out/console.log" >&2; exit 1; }
  grep -q '^=====LAB-RESULTS-END' "$out/results.txt" || { say "results truncated"; exit 1; }
  read -r _ size sum <<<"$hdr"
  sed -n '/^=====LAB-RESULTS-BEGIN/,/^=====LAB-RESULTS-END/p' "$out/results.txt" | sed '1d;$d' | base64 -d >"$out/results.tgz"
  [ "$(wc -c <"$out/results.tgz")" = "$size" ] && [ "$(sha256sum "$out/results.tgz" | cut -d' ' -f1)" = "$sum" ] ||
    { say "results damaged (size or sha256 differ)"; exit 1; }
  rm -rf "$RESULTS.tmp" && mkdir -p "$RESULTS.tmp"
  tar -xzf "$out/results.tgz" -C "$RESULTS.tmp"
  cp "$out/console.log" "$RESULTS.tmp/console.log"
  rm -rf "$RESULTS" && mv "$RESULTS.tmp" "$RESULTS"
}

case ${1:-} in
  build) build; say "ready: $VMLINUZ + $CACHE/initrd.cpio" ;;
  run) shift; run "$@" ;;
  list) { ls "$HERE/scenarios"; [ -n "$EXTRA" ] && ls "$EXTRA"; } | sed -n 's/\.sh$//p' ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
