"""``speech2vid bench --plot FILE.png``: per-frame latency per target, one panel per model, batch 1 vs streaming.

Bars are the median, whiskers reach p90 (thin) and p99 (dotted cap); the dashed line is the 40 ms a
frame may take at 25 fps. Rendered with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from speech2vid.bench.latency import VIDEO_FPS, BenchResult
from speech2vid.errors import OutputError
from speech2vid.files import atomic_path


def plot_results(results: Sequence[BenchResult], path: str | Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise OutputError("--plot needs matplotlib: pip install 'speech2vid[plot]'") from None
    import numpy as np

    out = Path(path).expanduser()
    models = list(dict.fromkeys(r.model for r in results))
    batches = sorted({r.batch for r in results})
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        rows = [r for r in results if r.model == model]
        targets = list(dict.fromkeys(r.target for r in rows))
        width = 0.8 / len(batches)
        for j, batch in enumerate(batches):
            xs, med, p90, p99 = [], [], [], []
            for i, t in enumerate(targets):
                r = next((r for r in rows if r.target == t and r.batch == batch), None)
                if r is None:
                    continue
                xs.append(i + (j - (len(batches) - 1) / 2) * width)
                med.append(r.frame_median_ms)
                p90.append(r.frame_p90_ms)
                p99.append(r.frame_p99_ms)
            bars = ax.bar(xs, med, width * 0.9, label=f"batch {batch}")
            colour = bars.patches[0].get_facecolor() if bars.patches else None
            ax.vlines(xs, med, p90, colors="black", linewidth=1.2)
            ax.scatter(xs, p99, marker="_", color="black", s=60)
            for x, m in zip(xs, med):
                ax.text(x, m, f"{m:.0f}" if m >= 10 else f"{m:.1f}", ha="center", va="bottom", fontsize=7, color=colour)
        ax.axhline(1000.0 / VIDEO_FPS, color="red", linestyle="--", linewidth=1)
        ax.text(len(targets) - 0.5, 1000.0 / VIDEO_FPS, " 25 fps", color="red", va="bottom", ha="right", fontsize=8)
        ax.set_xticks(np.arange(len(targets)))
        ax.set_xticklabels([t.replace(":", "\n", 1) for t in targets], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms per frame (median; whisker p90, tick p99)")
        ax.set_title(f"model '{model}'")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(out, ".png") as tmp:  # matplotlib picks the format by the extension
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return out
