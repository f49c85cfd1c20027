#!/usr/bin/env bash
# Installs the Debian packages that the checks need. Safe to run again: it only installs what is
# missing, and it changes nothing when everything is there. Used by `make setup-dev` (which
# `make test` and `make blog` run); the attendee's `make setup` needs none of them.
set -euo pipefail

# python3-venv: Debian's python3 cannot create a venv without it.
# jekyll and its plugins, html-proofer: the blog build and its link check.
# zookeeper (not zookeeperd, which starts a system service on 2181): master and scheduler HA.
# chromium: screenshots of the blog; chromium-driver: the live page's tests drive it (Selenium).
# curl: the step 3 post's terminal outputs (tools/outputs.py) show a standby master's answer.
packages=(
  python3-venv
  jekyll ruby-jekyll-feed ruby-jekyll-seo-tag ruby-jekyll-sitemap
  ruby-html-proofer
  zookeeper
  chromium chromium-driver
  curl
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: not a Debian-like system; install jekyll (with feed, seo-tag, sitemap), html-proofer, zookeeper, chromium, chromedriver and curl yourself, or the suites that need them will say so."
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing Debian packages; run: sudo apt-get install -y ${missing[*]}"
  exit 0
fi

echo "setup: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
