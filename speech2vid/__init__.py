"""speech2vid: a still face photo + speech in, a lip-synced talking face out."""

__version__ = "0.1.0"
