"""An agent's `resources` (what one of its attempts needs on a cluster node): `{ CPU = 1, memory = "2GB" }`.

`CPU` and `GPU` are counts, `memory` is bytes (a number, or a string with a unit), any other key is a custom
resource of the cluster (a count). Read into numbers the executor can hand to Ray as it is."""

from __future__ import annotations

import math
import re
from typing import Any

UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
MAX_COUNT = 1_000_000


class ResourceError(ValueError):
    pass


def parse_size(value: Any, name: str) -> float:
    """Bytes from `2GB`, `512MiB`, `1.5 GB` or a plain number of bytes."""
    if isinstance(value, bool):
        raise ResourceError(f"`{name}` must be a size such as \"2GB\" or a number of bytes, not {value!r}")
    if isinstance(value, (int, float)):
        size = float(value)
    elif isinstance(value, str) and (m := _SIZE.fullmatch(value)) and m.group(2).lower() in UNITS:
        size = float(m.group(1)) * UNITS[m.group(2).lower()]
    else:
        units = ", ".join(u.upper().replace("I", "i") for u in UNITS if u)
        raise ResourceError(f"`{name}` must be a size such as \"2GB\" or a number of bytes ({units}), "
                            f"not {value!r}")
    if not math.isfinite(size) or size <= 0:
        raise ResourceError(f"`{name}` must be more than 0 bytes, not {value!r}")
    return float(int(size))


def parse_resources(value: Any, name: str = "resources") -> dict[str, float]:
    """The resources table, or ResourceError naming the key and what it must be."""
    if not isinstance(value, dict):
        raise ResourceError(f"`{name}` must be a table such as {{ CPU = 1, memory = \"2GB\" }}, "
                            f"not {type(value).__name__}")
    out: dict[str, float] = {}
    for key, v in value.items():
        if not key or not isinstance(key, str):
            raise ResourceError(f"`{name}`: {key!r} is not a resource name")
        if key == "memory":
            out[key] = parse_size(v, f"{name}.memory")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            hint = " (only `memory` takes a unit)" if isinstance(v, str) else ""
            raise ResourceError(f"`{name}.{key}` must be a number{hint}, not {type(v).__name__} {v!r}")
        if not math.isfinite(v) or v < 0 or v > MAX_COUNT:
            raise ResourceError(f"`{name}.{key}` must be between 0 and {MAX_COUNT}, not {v!r}")
        out[key] = float(v)
    return out
