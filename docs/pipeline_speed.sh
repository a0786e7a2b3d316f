#!/usr/bin/env bash
# Issue 25 measurements: this checkout against def1973, same machine, one run, two alternated rounds.
# The old install, beside this one:
#   git worktree add /tmp/oldtree def1973
#   python3 -m venv --system-site-packages /tmp/oldvenv && /tmp/oldvenv/bin/pip install wheel
#   /tmp/oldvenv/bin/pip install --no-deps --no-build-isolation /tmp/oldtree
# Then: bash docs/pipeline_speed.sh (writes into a scratch folder; the INT8 engine built beforehand).
set -u
mkdir -p /tmp/pipeline_speed && cd /tmp/pipeline_speed
NEW="python3 -m speech2vid"
OLD="/tmp/oldvenv/bin/python -m speech2vid"
uptime
python3 - <<'PY'
import cv2
from pathlib import Path
from speech2vid.bench.pipeline import bench_photo, bench_video, looped_speech
for side in (512, 1280):
    cv2.imwrite(f"photo-{side}.png", cv2.cvtColor(bench_photo(side), cv2.COLOR_RGB2BGR))
bench_video(Path("clip-1280.mp4"), 1280, 500)
looped_speech(Path("speech20.wav"), 20.0)
looped_speech(Path("speech60.wav"), 60.0)
looped_speech(Path("speech600.wav"), 600.0)
PY
for round in 1 2; do  # alternated: the machine's load drifts
    for who in old new; do
        if [ "$who" = old ]; then run=$OLD; else run=$NEW; fi
        echo "== round $round, $who code, its defaults"
        for side in 512 1280; do $run -q generate --face photo-$side.png --audio speech20.wav -o $who-$side.mp4; done
        $run -q redub clip-1280.mp4 --audio speech20.wav -o $who-redub.mp4
    done
done
ls -la old-*.mp4 new-*.mp4
echo "== pipeline bench (new)"
$NEW -q bench --pipeline --only generate --only redub --json pipe.json
echo "== live at 1080, 60 s"
$NEW -q bench --pipeline --only live --size 1080 --pipeline-seconds 60 --json live1080.json
echo "== memory at 1280 px: 1 min and 10 min"
/usr/bin/time -v $NEW -q generate --face photo-1280.png --audio speech60.wav -o mem1.mp4 2>&1 | grep -E "Maximum resident|Elapsed|wrote"
/usr/bin/time -v $NEW -q generate --face photo-1280.png --audio speech600.wav -o mem10.mp4 2>&1 | grep -E "Maximum resident|Elapsed|wrote"
uptime
