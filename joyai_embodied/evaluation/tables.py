"""Benchmark results as Markdown tables and JSON-ready data (what ``joyai-embodied eval`` writes).

:func:`format_table` turns a result mapping into the table printed and saved as ``OUT/<name>.md``;
:func:`plain` turns dataclasses, numpy scalars and ``to_dict`` objects into JSON-ready data.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


def format_table(name: str, result: Any) -> str:
    """A Markdown table of a benchmark result's figures.

    A mapping of mappings becomes one row per key (``{"world model": {...}, "baseline": {...}}``); any
    other mapping becomes one ``metric | value`` row per scalar, nested mappings flattened to dotted keys
    (``relation_accuracy.left_of.accuracy``). Lists are left to the JSON.
    """
    if isinstance(result, Mapping) and result and all(isinstance(v, Mapping) for v in result.values()):
        columns = [k for k in next(iter(result.values())) if _is_scalar(next(iter(result.values()))[k])]
        lines = ["| " + " | ".join([name, *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
        for row, values in result.items():
            lines.append("| " + " | ".join([str(row), *(_cell(values.get(c)) for c in columns)]) + " |")
        return "\n".join(lines)
    if isinstance(result, Mapping):
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in _flatten(result)]
        return "\n".join(lines)
    return str(result)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            rows += _flatten(value, f"{prefix}{key}.")
        elif _is_scalar(value):
            rows.append((f"{prefix}{key}", value))
    return rows


def plain(result: Any) -> Any:
    """A result as JSON-ready data (dataclasses and objects with ``to_dict`` included)."""
    if hasattr(result, "to_dict"):
        return plain(result.to_dict())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return plain(dataclasses.asdict(result))
    if isinstance(result, Mapping):
        return {str(k): plain(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [plain(v) for v in result]
    if hasattr(result, "item") and callable(result.item):  # numpy scalars
        return result.item()
    return result


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
