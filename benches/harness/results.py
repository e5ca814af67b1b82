"""What a case produces: one cell per peer (its status and samples) and the case around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Unsupported(Exception):
    """fastcache does not accept this case yet (reported as "unsupported")."""


@dataclass
class Cell:
    status: str  # "ok", "n/a", "unsupported", "missing", "error"
    reason: str = ""
    samples: list[float] = field(default_factory=list)  # ns per operation
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        return min(self.samples) if self.status == "ok" and self.samples else None


@dataclass
class CaseResult:
    id: str
    title: str
    unit: str  # what the cell's number is
    cells: dict[str, Cell]
    note: str = ""
    reference: dict[str, Any] | None = None  # a non-cache yardstick (case 8, 9)
