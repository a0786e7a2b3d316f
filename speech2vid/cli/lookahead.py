"""``python -m speech2vid.cli.lookahead``: what a shorter look-ahead costs (:mod:`speech2vid.bench.lookahead`)."""

from __future__ import annotations

import argparse

import numpy as np

from speech2vid.bench.lookahead import format_effects, lookahead_effects


def main(argv: list[str] | None = None) -> int:
    from speech2vid.assets import sample_face, sample_speech
    from speech2vid.audio.io import read_audio, to_model_rate
    from speech2vid.config import load_model_config, load_settings
    from speech2vid.engine.factory import make_engine
    from speech2vid.faces import align_photo
    from speech2vid.model.ref import model_ref

    p = argparse.ArgumentParser(
        prog="python -m speech2vid.cli.lookahead",
        description="What a shorter look-ahead costs: windows and frames against the exact ones.",
    )
    p.add_argument("--audio", default=str(sample_speech()), help="speech file (default: the bundled sample)")
    p.add_argument("--model", default="lite")
    p.add_argument("--weights", default="random", help="safetensors weights or 'random' (default)")
    args = p.parse_args(argv)
    signal = to_model_rate(read_audio(args.audio)).astype(np.float32)
    loaded = model_ref(load_model_config(args.model), args.weights)
    # Random weights have no exported graphs: PyTorch runs them (the [train] extra).
    engine = make_engine(loaded, load_settings().engine, backend="torch" if loaded.is_random else None)
    with engine:
        engine.set_identity([align_photo(str(sample_face())).image])

        def render(windows: np.ndarray) -> np.ndarray:
            return np.concatenate([engine.render(windows[i : i + 16]) for i in range(0, len(windows), 16)])

        effects = lookahead_effects(signal, render)
    print(f"{args.audio}: {signal.size / 16000:.2f} s; model {args.model}, weights {loaded.label}")
    print(format_effects(effects))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
