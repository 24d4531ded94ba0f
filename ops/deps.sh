#!/usr/bin/env bash
# Installs the Debian 12 packages intygsgw needs to build, test and demo, if any is missing.
# Sourced by ops/test.sh and ops/demo.sh. Needs root (apt-get) only when something is missing.
intygsgw_deps() {
        local pkgs=(build-essential cmake pkg-config clang clang-format openssl curl
                libuv1-dev libssl-dev libcurl4-openssl-dev libxml2-dev libxml2-utils
                libsqlite3-dev sqlite3 libhttp-parser-dev libinih-dev libcriterion-dev libjansson-dev libjs-chart.js
                chromium fonts-liberation
                python3 "$@")
        local missing=()
        for p in "${pkgs[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
                echo "installing: ${missing[*]}"
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -qq
                apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
}
