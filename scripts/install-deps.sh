#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install every Debian package bridle needs to build, test, benchmark and run
# the demo. Idempotent: packages already present are not touched, and apt is
# only called when something is missing.
set -eu

PKGS="make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libssl-dev
libjansson-dev libcmocka-dev libpg-query-dev libvectorscan-dev pkg-config iproute2 curl
python3 libclang-rt-14-dev procps psmisc util-linux iperf3 haproxy socat
jq coreutils openssl postgresql postgresql-client python3-psycopg2 python3-cryptography pgbouncer
libcurl4-openssl-dev libmicrohttpd-dev chromium"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing
else
	echo "install-deps: all packages present"
fi

# bpffs is where bridle pins its links and maps.
if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	mount -t bpf bpf /sys/fs/bpf
fi

# The reviewers' page is tested in headless Chromium, driven by
# puppeteer-core from npm (pinned by tests/browser/package-lock.json).
# Node and npm may come from elsewhere (nodesource's nodejs bundles npm,
# and conflicts with Debian's npm package): only what is missing.
for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		pkg=$tool
		[ "$tool" = node ] && pkg=nodejs
		echo "install-deps: installing $pkg"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends "$pkg"
	fi
done
dir=$(cd "$(dirname "$0")/.." && pwd)/tests/browser
if [ ! -d "$dir/node_modules/puppeteer-core" ]; then
	echo "install-deps: npm ci in tests/browser"
	(cd "$dir" && npm ci --silent --no-audit --no-fund)
fi
