"""Decode any audio or video file and bring its audio to the model's 16 kHz mono.

Import from the submodules (``speech2vid.audio.io``); this package deliberately imports nothing so
that ``speech2vid.audio.constants`` stays cheap for the feature code.
"""
