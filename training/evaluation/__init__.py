"""Evaluation: image quality, mouth agreement and audio-visual sync against baselines."""
