"""A daemon configuration written as TOML, as a box's edge.toml is."""

from __future__ import annotations

import json
from pathlib import Path

# A watched folder that takes a finished recording within seconds, for tests that drop files in.
FAST_FOLDER = {"settle_seconds": 1.5, "rescan_seconds": 2}


def write_config(path: Path, data_dir: Path, source: dict, **sections) -> Path:
    """A TOML configuration: `source` is the [source] table, `sections` other tables (or top-level values)."""
    lines = [f'data_dir = "{data_dir}"'] + ([] if "box_id" in sections else ['box_id = "test-box"'])
    tables = {"health": {"interval_seconds": 1}, **sections, "source": source}
    for name, table in tables.items():
        if not isinstance(table, dict):
            lines.insert(0, f"{name} = {toml_value(table)}")
            continue
        lines.append(f"\n[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))
