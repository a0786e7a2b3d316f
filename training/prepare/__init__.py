"""Real videos -> training dataset (paper section 2): shots, face tracks, smoothed landmarks, speaker
selection with an audio-video offset estimate, registration, samples. Entry point: :func:`run_prepare`.
"""

from __future__ import annotations

from speech2vid.training.prepare.run import PrepareError, PrepareSummary, run_prepare, stats_table

__all__ = ["PrepareError", "PrepareSummary", "run_prepare", "stats_table"]
