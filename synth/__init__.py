"""The synthetic talking-face corpus: eSpeak NG speech with its phoneme timeline, visemes with
coarticulation, a procedural face renderer, photo animation, and ``make_corpus`` for tests.

    from speech2vid.synth import make_corpus
    root = make_corpus(tmp_path / "ds", identities=2, minutes=0.2, seed=0)   # a small dataset, seconds
"""

from __future__ import annotations

from .corpus import make_corpus, run_synth

__all__ = ["make_corpus", "run_synth"]
