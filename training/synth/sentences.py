"""Varied English sentences from a small grammar, reproducible for a seed (no text corpus to download)."""

from __future__ import annotations

import numpy as np

_SUBJECTS = (
    "the old man",
    "my sister",
    "a small child",
    "the teacher",
    "our neighbour",
    "the pilot",
    "every farmer",
    "the quiet girl",
    "his brother",
    "the doctor",
    "a tired worker",
    "the baker",
    "my friend",
    "the captain",
    "the young woman",
    "a famous singer",
    "the mayor",
    "her father",
    "the gardener",
    "a lonely sailor",
)
_VERBS = (
    "bought",
    "painted",
    "found",
    "wanted",
    "remembered",
    "carried",
    "opened",
    "watched",
    "fixed",
    "moved",
    "borrowed",
    "described",
    "forgot",
    "followed",
    "measured",
    "ordered",
    "pushed",
    "visited",
    "washed",
    "chose",
)
_OBJECTS = (
    "a blue umbrella",
    "the wooden boat",
    "seven yellow apples",
    "a map of the city",
    "the broken window",
    "an empty bottle",
    "the heavy box",
    "a pair of shoes",
    "the purple flowers",
    "a cup of coffee",
    "the morning paper",
    "a bag of rice",
    "the golden key",
    "a warm blanket",
    "the big piano",
    "three books",
    "a new bicycle",
    "the cheese sandwich",
    "the white horse",
    "a jar of honey",
)
_PLACES = (
    "near the river",
    "before lunch",
    "in the kitchen",
    "at the station",
    "after the storm",
    "on Friday",
    "under the bridge",
    "by the window",
    "in the garden",
    "during the match",
    "at midnight",
    "in the museum",
    "behind the school",
    "across the street",
    "at the market",
    "on the beach",
)
_OPENERS = ("", "", "", "yesterday ", "luckily ", "of course ", "this morning ", "believe it or not ", "so ")
_QUESTIONS = (
    "did you see {o} {p}?",
    "why would {s} need {o}?",
    "who {v} {o}?",
    "where is {o} now?",
    "can you bring {o} {p}?",
    "how much was {o}?",
)
_EXTRAS = (
    "please speak slowly and clearly.",
    "that was a wonderful surprise.",
    "we should leave at seven o'clock.",
    "she sells sea shells by the sea shore.",
    "the weather is lovely today.",
    "thank you very much.",
    "I think you are right about that.",
    "we will meet again next week.",
    "nobody knows the answer yet.",
    "it is twenty past four.",
    "they moved to a bigger house.",
    "you said that, and now I say it too.",
)


def sentence(rng: np.random.Generator) -> str:
    r = rng.random()

    def pick(xs: tuple[str, ...]) -> str:
        return xs[int(rng.integers(len(xs)))]

    if r < 0.15:
        return pick(_EXTRAS).capitalize()
    if r < 0.35:
        q = pick(_QUESTIONS).format(s=pick(_SUBJECTS), v=pick(_VERBS), o=pick(_OBJECTS), p=pick(_PLACES))
        return q[0].upper() + q[1:]
    text = f"{pick(_OPENERS)}{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)}"
    if rng.random() < 0.7:
        text += f" {pick(_PLACES)}"
    if rng.random() < 0.25:
        text += f", and {pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)}"
    return text[0].upper() + text[1:] + ("!" if rng.random() < 0.1 else ".")
