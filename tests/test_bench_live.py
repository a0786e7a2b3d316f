"""``speech2vid bench --live`` and the engine ``live`` chooses: the real loop and the real engine cache (lite,
random weights, FP32 exported into a private cache; INT8 deliberately not built, then built)."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from speech2vid.assets import sample_face, sample_speech
from speech2vid.config import EngineConfig, Settings
from speech2vid.engine.cache import EngineRefused
from speech2vid.faces import align_photo
from speech2vid.runtime.avatar import Avatar


@pytest.fixture()
def settings(engine_cache):  # type: ignore[no-untyped-def]
    return Settings(engine=EngineConfig(cache_dir=str(engine_cache)))


def _maker(lite_loaded):  # type: ignore[no-untyped-def]
    from speech2vid.engine.factory import make_engine

    return lambda s: make_engine(lite_loaded, s.engine)


def test_bench_live_runs_each_built_precision_and_names_the_missing_one(lite_loaded, lite_onnx, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from speech2vid.bench.live import format_live_table, run_live_bench, write_live_json
    from speech2vid.features.windows import lookahead_seconds
    from speech2vid.runtime.live_report import STAGES

    # A private cache with the FP32 graphs only (the session's shared cache gets INT8 from other tests).
    folder = lite_onnx["frame"].parent
    private = tmp_path / "cache" / folder.name
    private.mkdir(parents=True)
    for f in folder.glob("*-fp32-onnxruntime.*"):
        shutil.copy2(f, private / f.name)
    settings = Settings(engine=EngineConfig(cache_dir=str(tmp_path / "cache")))

    for p in ("int8",):  # the bench must not find an INT8 engine in this private cache
        with pytest.raises(EngineRefused):
            _maker(lite_loaded)(dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, precision=p)))
    rows = run_live_bench(
        settings,
        _maker(lite_loaded),
        audio=sample_speech(),
        avatar=Avatar.bare([align_photo(sample_face()).image]),
        precisions=["fp32", "int8"],
        seconds=2.0,
    )
    fp32, int8 = rows
    assert fp32.skipped is None and "fp32" in fp32.engine and fp32.frames == 50
    assert [name for name, _, _ in fp32.stages] == [*STAGES, "total"]
    want = 1000 * lookahead_seconds(lite_loaded.model.cfg.lookahead_columns)  # 62.5 ms for lite
    assert fp32.stages[0][1] == pytest.approx(want, abs=0.5)  # the look-ahead stage is the model's window
    assert int8.skipped is not None and "speech2vid build" in int8.skipped and "int8" in int8.skipped
    table = format_live_table(rows)
    assert "total" in table and "int8: skipped" in table
    write_live_json(rows, tmp_path / "b.json")
    data = json.loads((tmp_path / "b.json").read_text())
    assert data[0]["stages"][-1]["stage"] == "total" and data[1]["skipped"]


def test_live_runs_int8_when_built_and_says_so(lite_loaded, lite_built, caplog) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.runtime.engine_choice import live_precision

    built_settings, _ = lite_built  # INT8 and FP16 built into the private cache
    make = _maker(lite_loaded)
    with caplog.at_level(logging.INFO, logger="speech2vid.live"):
        chosen = live_precision(built_settings, explicit=False, make=make)
    assert chosen.engine.precision == "int8" and chosen.engine.onnxruntime.intra_op_threads == 1
    assert "running the INT8 engine" in caplog.text
    # --precision is obeyed; prefer_int8 off keeps the configured precision
    assert live_precision(built_settings, explicit=True, make=make).engine.precision == "fp32"
    off = dataclasses.replace(built_settings, live=dataclasses.replace(built_settings.live, prefer_int8=False))
    assert live_precision(off, explicit=False, make=make).engine.precision == "fp32"


def test_live_without_int8_runs_the_configured_precision_and_says_why(lite_loaded, lite_onnx, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from speech2vid.build_engines.onnx_export import export_fp32
    from speech2vid.runtime.engine_choice import live_precision

    s = Settings(engine=EngineConfig(cache_dir=str(tmp_path / "cache")))  # an empty cache: nothing built
    export_fp32(lite_loaded, s.engine, tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="speech2vid.live"):
        chosen = live_precision(s, explicit=False, make=_maker(lite_loaded))
    assert chosen.engine.precision == "fp32"
    assert "no usable INT8 engine" in caplog.text and "speech2vid build --precision int8" in caplog.text


def test_bench_live_under_load_runs_the_busy_processes_beside_and_stops_them(
    lite_loaded, lite_onnx, engine_cache
) -> None:  # type: ignore[no-untyped-def]
    """``bench --live --load 0 --load 1``: one row per load in one run; the load's processes really work
    while the loop runs and are gone after it."""
    from speech2vid.bench.cpu_load import CpuLoad
    from speech2vid.bench.live import format_live_table, run_live_bench

    with CpuLoad(2) as load:
        assert all(p.is_alive() for p in load.processes)
        pids = [p.pid for p in load.processes]
        first = [_cpu_seconds(pid) for pid in pids]
        while min(_cpu_seconds(pid) for pid in pids) < min(first) + 0.2:  # they spin: CPU time accumulates
            pass
    assert not any(p.is_alive() for p in load.processes)
    settings = Settings(engine=EngineConfig(cache_dir=str(engine_cache)))
    rows = run_live_bench(
        settings,
        _maker(lite_loaded),
        audio=sample_speech(),
        avatar=Avatar.bare([align_photo(sample_face()).image]),
        precisions=["fp32"],
        seconds=2.0,
        loads=[0, 1],
    )
    assert [(r.precision, r.load, r.frames) for r in rows] == [("fp32", 0, 50), ("fp32", 1, 50)]
    assert "fp32 load 1" in format_live_table(rows)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    import os

    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_loop_asks_for_priority_and_says_when_it_may_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``live.nice``: every thread of the process gets it where the OS allows (root, CAP_SYS_NICE); else
    nothing changes and a line says how to allow it. Run in a child, so that this test process keeps its own."""
    import subprocess
    import sys

    code = (
        "import logging, os, threading, time\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from speech2vid.runtime.priority import raise_priority\n"
        "t = threading.Thread(target=time.sleep, args=(2,)); t.start()\n"
        "took = raise_priority(-5)\n"
        "nices = {os.getpriority(os.PRIO_PROCESS, int(x)) for x in os.listdir('/proc/self/task')}\n"
        "print(took, sorted(nices), raise_priority(0))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    took, rest = run.stdout.split(" ", 1)
    if took == "True":
        assert rest.strip() == "[-5] False"  # every thread, the new one included; 0 leaves them alone
    else:
        assert "CAP_SYS_NICE" in run.stderr and "-5" not in rest
