#!/usr/bin/env bash
# Redub speed, before and after, in one run (issue 12): two installs of speech2vid side by side, the same
# 640x480 source and speech, runs alternated so that both see the same machine load; then the outputs are
# compared byte for byte (same frames, same encoder settings -> the same file).
#   docs/redub_speed.sh OLD_PYTHON NEW_PYTHON [ROUNDS]
# OLD_PYTHON/NEW_PYTHON: the python of each install (e.g. a venv with `pip install .` of each commit).
set -euo pipefail
old_py=$1 new_py=$2 rounds=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$new_py" -m speech2vid.assets.synthetic_video src.mp4 --frames 250 --size 640x480 >/dev/null
speech=$("$new_py" -c 'from speech2vid.assets import sample_speech; print(sample_speech())')
for r in $(seq "$rounds"); do
    for which in old new; do
        py=${which}_py
        t0=$(date +%s.%N)
        line=$("${!py}" -m speech2vid -q redub src.mp4 --audio "$speech" -o "$which.mp4")
        t1=$(date +%s.%N)
        fps=$(sed -E 's/.*; ([0-9.]+) frames\/s\)$/\1/' <<<"$line")
        printf '%s round %d: %s frames/s (pass 2), %.1f s whole command\n' "$which" "$r" "$fps" "$(echo "$t1 - $t0" | bc)"
    done
    cmp -s old.mp4 new.mp4 && echo "  outputs identical (byte for byte)" || { echo "  outputs DIFFER"; exit 1; }
done
