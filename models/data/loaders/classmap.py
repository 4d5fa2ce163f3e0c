"""Class mapping of box and class-folder datasets: the dataset's class names -> hand sides.

Box datasets people label themselves (labelImg's Pascal VOC XML, Roboflow's YOLO txt) and
class-folder sets name classes by what the hand does ("five", "A", "3-hand"), not by side. The
loaders' option `classes=MAP` says what each class is:

    MAP   := RULE ( ";" RULE )*
    RULE  := NAME ":" TARGET          NAME a class name (YOLO: its name from data.yaml, or its
                                      index) or "*" for every class no other rule names
    TARGET:= left | right | hand | drop

"hand" is a hand of unknown side (training learns it as "a hand", see models/training), "drop"
ignores the object. The default `*:hand` makes every class a hand. A class that no rule maps
stops the loader with an error naming it (a silently dropped hand would be learned as
background). Example: `voc:/data/mine?classes=left_hand:left;right_hand:right;face:drop`.
"""

from __future__ import annotations

from handpose.errors import HandposeError

TARGETS = ("left", "right", "hand", "drop")
DEFAULT = "*:hand"


class ClassMap:
    """Parsed `classes=` option: `side(name)` -> "left" | "right" | "hand" | None (drop)."""

    def __init__(self, text: str = DEFAULT, where: str = "classes") -> None:
        self.text = text
        self.where = where
        self.rules: dict[str, str] = {}
        for rule in filter(None, (r.strip() for r in str(text).split(";"))):
            name, sep, target = rule.rpartition(":")
            name, target = name.strip(), target.strip().lower()
            if not sep or not name or target not in TARGETS:
                raise HandposeError(
                    f"{where}: class rule {rule!r} must be NAME:TARGET with TARGET one of "
                    f"{', '.join(TARGETS)} (e.g. classes=*:hand or classes=lh:left;rh:right)"
                )
            self.rules[name] = target
        if not self.rules:
            raise HandposeError(f"{where}: classes= is empty; write e.g. classes=*:hand")

    def side(self, name: str) -> str | None:
        """The side of class `name` (None: dropped); HandposeError for an unmapped class."""
        target = self.rules.get(str(name), self.rules.get("*"))
        if target is None:
            raise HandposeError(
                f"{self.where}: class {name!r} is not in classes={self.text}; add a rule for it "
                f"(e.g. classes={self.text};{name}:hand, or {name}:drop to ignore it)"
            )
        return None if target == "drop" else target
