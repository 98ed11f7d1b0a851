#!/bin/sh
# Installs the Debian packages the build and tests need, when something is missing.
set -e
need=""
have() { command -v "$1" >/dev/null 2>&1; }
have cmake || need="$need cmake"
have make || need="$need make"
have gcc || need="$need gcc"
have clang || need="$need clang"
have qemu-system-x86_64 || need="$need qemu-system-x86"
have iasl || need="$need acpica-tools"
have python3 || need="$need python3"
have pkg-config || need="$need pkgconf"
have nm || need="$need binutils"
# libFuzzer and the sanitizer runtimes for clang
[ -n "$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] || need="$need libclang-rt-dev"
[ -z "$need" ] && exit 0
echo "deps: installing$need"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
