"""Named train/test splits of the peg universe, for generalisation studies.

A split decides, for a peg (family, size, length, sampled or not), whether it is for training or
testing. Later stages (`fmb eval --split NAME`) evaluate on the test side.

| name             | test side                                              |
|------------------|--------------------------------------------------------|
| all              | nothing: every peg is for training                     |
| family_holdout   | the hexagon and star families (one convex, one not)    |
| size_holdout     | size L (train on S and M)                              |
| length_holdout   | short pegs (train on long)                             |
| procedural       | sampled members of any family (train on the FMB set)   |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from cad.peg import PegSpec
from fmb_core.errors import ParameterError

HELD_OUT_FAMILIES = ("hexagon", "star")


@dataclasses.dataclass(frozen=True)
class Split:
    """A named train/test split.

    Attributes:
        name: registry key.
        description: one line for humans.
        is_test: peg spec -> True when the peg belongs to the test side.
    """

    name: str
    description: str
    is_test: Callable[[PegSpec], bool]

    def side(self, spec: PegSpec) -> str:
        """"train" or "test"."""
        return "test" if self.is_test(spec) else "train"

    def partition(self, specs: Iterable[PegSpec]) -> tuple[list[PegSpec], list[PegSpec]]:
        """(train, test) lists, order kept."""
        train, test = [], []
        for s in specs:
            (test if self.is_test(s) else train).append(s)
        return train, test


SPLITS: dict[str, Split] = {
    s.name: s
    for s in (
        Split("all", "every peg is for training", lambda s: False),
        Split("family_holdout", "test on the hexagon and star families", lambda s: s.shape.name in HELD_OUT_FAMILIES),
        Split("size_holdout", "train on sizes S and M, test on L", lambda s: s.size == "L"),
        Split("length_holdout", "train on long pegs, test on short", lambda s: s.length == "short"),
        Split("procedural", "train on the FMB set, test on sampled members", lambda s: s.size == "custom"),
    )
}


def get_split(name: str) -> Split:
    """The split called `name`; ParameterError listing the known ones otherwise."""
    if name not in SPLITS:
        raise ParameterError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
    return SPLITS[name]
