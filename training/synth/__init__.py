"""The synthetic talking-face corpus: eSpeak NG speech with its phoneme timeline, visemes with
coarticulation, a procedural face renderer, photo animation, and ``make_corpus`` for tests.

    from speech2vid.training.synth import make_corpus
    root = make_corpus(tmp_path / "ds", identities=2, minutes=0.2, seed=0)   # a small dataset, seconds

The names are imported lazily, so that ``python -m speech2vid.training.synth.speech`` (one video's speech in a
fresh process) stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_corpus", "run_synth"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from speech2vid.training.synth import corpus

        return getattr(corpus, name)
    raise AttributeError(f"module 'speech2vid.training.synth' has no attribute {name!r}")
