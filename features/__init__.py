"""Speech features: the MFCC front end (batch and streaming) and the per-frame 12x35 windows.

Import from the submodules (``speech2vid.features.mfcc``, ``speech2vid.features.windows``).
"""
