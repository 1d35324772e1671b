"""Names as the real datasets write them, at full size: UCF101's 101 classes (with the
``HandstandPushups`` / ``v_HandStandPushups_`` case quirk), HMDB51's 51 classes and its video names
with special characters, Something-Something V2's 174 templates and Kinetics-400's 400 labels
(quoted ones with spaces, parentheses and apostrophes). The class names other than a few real ones
are made up; the counts, orders and quirks are the official ones (FORMATS.md), so the parsers meet
what they meet on the real files.
"""

from __future__ import annotations

UCF_REAL = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "HandstandPushups"]

HMDB_CLASSES = [
    "brush_hair", "cartwheel", "catch", "chew", "clap", "climb", "climb_stairs", "dive", "draw_sword",
    "dribble", "drink", "eat", "fall_floor", "fencing", "flic_flac", "golf", "handstand", "hit", "hug",
    "jump", "kick", "kick_ball", "kiss", "laugh", "pick", "pour", "pullup", "punch", "push", "pushup",
    "ride_bike", "ride_horse", "run", "shake_hands", "shoot_ball", "shoot_bow", "shoot_gun", "sit",
    "situp", "smile", "smoke", "somersault", "stand", "swing_baseball", "sword", "sword_exercise",
    "talk", "throw", "turn", "walk", "wave",
]

SSV2_REAL = ["Approaching [something] with your camera", "Pushing [something] from left to right",
             "Pushing [something] from right to left", "Spinning [something] that quickly stops spinning"]

K400_SPECIAL = ["abseiling", "curling hair", "massaging person's head", "passing American football (in game)",
                "zumba"]


def ucf101_classes() -> list[str]:
    """101 class names in classInd order; one is the case quirk class ``HandstandPushups``."""
    return UCF_REAL + [f"Zaction{i:03d}" for i in range(101 - len(UCF_REAL))]


def ucf101_file_class(name: str) -> str:
    """The class as written in video file names (``v_HandStandPushups_...``)."""
    return "HandStandPushups" if name == "HandstandPushups" else name


def hmdb51_video(cls: str, i: int) -> str:
    """A video name; every third one carries the official special characters ``! [ ] ( ) & ;``."""
    if i % 3 == 0:
        return f"Bodenturnen_2004_(Teil_1)!_[HD]_&_more;_{cls}_f_cm_np1_ba_med_{i}.avi"
    return f"April_09_{cls}_u_nm_np1_ba_goo_{i}.avi"


def ssv2_templates() -> list[str]:
    """174 templates (with [something] brackets), alphabetical."""
    made_up = [f"Task {i:03d}: putting [something] next to [something]" for i in range(174 - len(SSV2_REAL))]
    return sorted(SSV2_REAL + made_up)


def k400_classes() -> list[str]:
    """400 label names, sorted, including quoted ones with spaces, parentheses and apostrophes."""
    return sorted(K400_SPECIAL + [f"doing thing {i:03d}" for i in range(400 - len(K400_SPECIAL))])
