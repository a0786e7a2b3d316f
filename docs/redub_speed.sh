#!/usr/bin/env bash
# Redub speed of several installs of speech2vid in one run (issue 12): the same 640x480 source and speech,
# the installs alternated round by round so that all see the same machine load; each output is compared
# byte for byte with the first install's (same model and encoder settings -> the same file, when the
# pipelines render the same frames).
#   docs/redub_speed.sh NAME=PYTHON [NAME=PYTHON ...] [-- ROUNDS]
# PYTHON: the interpreter of one install (a venv with `pip install .` of a commit).
set -euo pipefail
installs=() rounds=3
while [ $# -gt 0 ]; do
    case $1 in --) rounds=$2; shift 2;; *) installs+=("$1"); shift;; esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
first_py=${installs[0]#*=}
"$first_py" -m speech2vid.cli.synthetic_video src.mp4 --frames 250 --size 640x480 >/dev/null
speech=$("$first_py" -c 'from speech2vid.assets import sample_speech; print(sample_speech())')
for r in $(seq "$rounds"); do
    for pair in "${installs[@]}"; do
        name=${pair%%=*} py=${pair#*=}
        line=$("$py" -m speech2vid -q redub src.mp4 --audio "$speech" -o "$name.mp4")
        fps=$(sed -E 's/.*; ([0-9.]+) frames\/s\)$/\1/' <<<"$line")
        same=""
        [ "$pair" = "${installs[0]}" ] || { cmp -s "$name.mp4" "${installs[0]%%=*}.mp4" && same=" (output identical to ${installs[0]%%=*})" || same=" (output differs from ${installs[0]%%=*})"; }
        echo "round $r: $name $fps frames/s$same"
    done
done
