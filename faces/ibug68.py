"""The iBUG 300-W 68-point landmark scheme used by dlib (0-based indices).

Only facts about the scheme live here: which index is which part of the face, and which index a
point becomes when the face is mirrored left/right.
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 68

JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))  # the subject's right = image left on a frontal face
LEFT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_BASE = tuple(range(31, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))
CHIN = 8  # tip of the jaw line

# Speech2Vid registers faces on the nose and eyes only (1-based 28..48 in the authors' code): the
# mouth moves with speech, and that motion is the signal, so it must not pull the alignment.
REGISTRATION_INDICES = NOSE_BRIDGE + NOSE_BASE + RIGHT_EYE + LEFT_EYE  # 21 points, 27..47

# Index of each point's mirror partner (an involution): after flipping an image horizontally,
# point i of the flipped face is point MIRROR_PERMUTATION[i] of the original, flipped.
_MIRROR_PAIRS = (
    [(i, 16 - i) for i in range(17)]  # jaw
    + [(17 + i, 26 - i) for i in range(5)]  # brows
    + [(27 + i, 27 + i) for i in range(4)]  # nose bridge (on the symmetry axis)
    + [(31 + i, 35 - i) for i in range(5)]  # nose base
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48 + i, 54 - i) for i in range(7)]  # upper outer lip
    + [(55, 59), (56, 58), (57, 57)]  # lower outer lip
    + [(60 + i, 64 - i) for i in range(5)]  # upper inner lip
    + [(65, 67), (66, 66)]  # lower inner lip
)
MIRROR_PERMUTATION = np.full(N_LANDMARKS, -1, dtype=np.intp)
for _a, _b in _MIRROR_PAIRS:
    MIRROR_PERMUTATION[_a] = _b
    MIRROR_PERMUTATION[_b] = _a
MIRROR_PERMUTATION.setflags(write=False)
del _a, _b


INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))  # upper and lower inner-lip points facing each other


def lip_gap_ratio(landmarks: np.ndarray) -> float:
    """Inner-lip gap / inter-ocular distance (between the eye centres) of one face's 68 landmarks."""
    pts = np.asarray(landmarks, dtype=np.float64)
    gap = float(np.mean([np.linalg.norm(pts[a] - pts[b]) for a, b in INNER_LIP_PAIRS]))
    iod = float(np.linalg.norm(pts[list(RIGHT_EYE)].mean(axis=0) - pts[list(LEFT_EYE)].mean(axis=0)))
    return gap / max(iod, 1e-6)
