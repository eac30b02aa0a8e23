#!/usr/bin/env bash
# Installs what kiln needs from Debian's packages, if missing. As root it runs
# apt-get; otherwise it prints the exact apt-get line to run.
#   scripts/setup.sh          build and test dependencies, Fashion-MNIST
#                             (dataset-fashion-mnist, read by the demo and by a test),
#                             chromium (headless, renders report.html in a test),
#                             and clang with its runtime (libFuzzer: make fuzz-ci)
set -euo pipefail
packages=(cmake g++ make libeigen3-dev doctest-dev libcli11-dev nlohmann-json3-dev libstb-dev zlib1g-dev
          libyaml-cpp-dev         # YAML sweep configs (kiln sweep)
          libdnnl-dev             # oneDNN: the CPU fast path for convolutions (engine/ops/onednn/)
          dataset-fashion-mnist   # Fashion-MNIST: the demo and the CPU training test
          chromium                # headless browser: the end-to-end test of report.html
          clang libclang-rt-14-dev)  # libFuzzer + sanitizers: the fuzz targets (make fuzz-ci)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all packages present (${packages[*]})"
  exit 0
fi
cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages; run as root:"
  echo "  apt-get update && ${cmd[*]}"
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
"${cmd[@]}"
