"""Typed options: frozen dataclasses checked once, with errors that name the field and the accepted keys.

Each backend (and env) declares its options as a frozen dataclass derived from :class:`TypedConfig`
(``backends/<name>/configuration_<name>.py``). Construction checks every field against its annotation
(``int``, ``float``, ``str``, ``bool``, ``X | None``, ``Literal[...]``, ``Mapping``...), turns an ``int``
given for a ``float`` into a float, and then runs the class's own range checks (:meth:`TypedConfig.check`).
:func:`config_from_options` builds one from a preset's mapping and refuses unknown keys, listing the
accepted ones::

    >>> config_from_options(GeometricConfig, {"address": "tcp://x:1"}, "geometric backend")
    InvalidInputError: address: expected an option of the geometric backend (accepted: cameras,
    hole_fill_px, relation_margin_m, voxel_size_m), got an unknown option

The command-line side of typed options is here too (:func:`positive_int`, :func:`seed_int` for argparse), so
that the option parsers of the transports (``serve-model``, ``ros``) use them without importing the commands.
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import math
import os
import types
import typing
from typing import Any, Callable, Literal, Mapping, TypeVar, Union

from .errors import InvalidInputError

C = TypeVar("C", bound="TypedConfig")


@dataclasses.dataclass(frozen=True)
class TypedConfig:
    """Base of every options dataclass: fields are type-checked on construction, then :meth:`check` runs.

    Subclasses are ``@dataclasses.dataclass(frozen=True)`` with annotated, defaulted fields.

    Raises:
        InvalidInputError: a field of the wrong type (naming the field and the type), or out of range.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            checked = _coerce(value, hints[field.name])
            if checked is _MISMATCH:
                raise InvalidInputError(field.name, describe_type(hints[field.name]),
                                        f"{value!r} ({type(value).__name__})")
            if checked is not value:  # e.g. an int given for a float field
                object.__setattr__(self, field.name, checked)
        self.check()

    def check(self) -> None:
        """Range and consistency checks of the subclass; raises InvalidInputError naming the field."""

    @classmethod
    def accepted_keys(cls) -> list[str]:
        """The option names this config accepts, sorted."""
        return sorted(field.name for field in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain mapping (``config_from_options(type(c), c.to_dict(), ...) == c``)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def config_from_options(cls: type[C], options: Mapping[str, Any], what: str) -> C:
    """Builds the config ``cls`` from a mapping of options (a preset's keys plus overrides).

    Args:
        cls: a frozen dataclass derived from :class:`TypedConfig`.
        options: option name -> value.
        what: what the options configure, in words (``"geometric backend"``), used in error messages.

    Returns:
        The checked config.

    Raises:
        InvalidInputError: an unknown key (the message lists the accepted ones), a wrongly typed value
            (the message names the type expected) or a value out of range.
    """
    if not isinstance(options, Mapping):
        raise InvalidInputError(what, "a mapping of option names to values", type(options).__name__)
    accepted = cls.accepted_keys()
    for key in options:
        if key not in accepted:
            raise InvalidInputError(str(key), f"an option of the {what} (accepted: {', '.join(accepted)})",
                                    "an unknown option")
    return cls(**dict(options))


def resolve_config(cls: type[C], config: C | None, options: Mapping[str, Any], what: str) -> C:
    """A backend constructor's config: the one given, or one built from keyword options (not both).

    Raises:
        InvalidInputError: both a config and options given, a config of another class, or bad options.
    """
    if config is None:
        return config_from_options(cls, options, what)
    if not isinstance(config, cls):
        raise InvalidInputError("config", f"a {cls.__name__}", type(config).__name__)
    if options:
        raise InvalidInputError(sorted(options)[0], f"either a {cls.__name__} or keyword options, not both",
                                "both")
    return config


def number_option(convert: Callable[[str], Any], expected: str, holds: Callable[[Any], bool],
                  bounds: str) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses with ``convert`` and refuses values for which ``holds`` is false.

    A bad value becomes argparse's one-line usage error (exit 2) naming ``expected`` / ``bounds``, never a
    traceback (``nan`` and ``inf`` included: ``holds`` decides).
    """
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not holds(value):
            raise argparse.ArgumentTypeError(f"expected {bounds}, got {text}")
        return value

    return parse


#: Counts and sizes: an integer greater than zero.
positive_int = number_option(int, "a positive integer", lambda v: v > 0, "a positive integer")
#: Seeds: an integer in [0, 2**32 - 1] (what numpy's generators accept).
seed_int = number_option(int, "a seed (an integer >= 0)", lambda v: 0 <= v < 2**32, "a seed in [0, 2**32 - 1]")
#: Sizes in MiB: a finite number > 0 (and small enough to count in bytes).
megabytes_option = number_option(float, "a size in MiB (a number > 0)",
                                 lambda v: math.isfinite(v) and 0 < v and v * 2**20 <= 2**62, "a finite size in MiB > 0")
#: Durations: a finite number of seconds > 0.
seconds_option = number_option(float, "seconds (a number > 0)", lambda v: math.isfinite(v) and v > 0,
                               "a finite number of seconds > 0")


def describe_type(annotation: Any) -> str:
    """An annotation in words: ``float | None`` -> ``"a number or None"``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    target = origin or annotation
    return _TYPE_WORDS.get(target, f"a {getattr(target, '__name__', str(target))}")


_TYPE_WORDS: dict[Any, str] = {
    bool: "true or false", int: "an integer", float: "a number", str: "a string", os.PathLike: "a path",
    collections.abc.Mapping: "a mapping", dict: "a mapping", tuple: "a list", list: "a list",
    collections.abc.Sequence: "a list",
}
_MISMATCH = object()


def _coerce(value: Any, annotation: Any) -> Any:
    """``value`` if it fits ``annotation`` (a float for an int where a float is expected), else _MISMATCH."""
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for member in typing.get_args(annotation):
            checked = _coerce(value, member)
            if checked is not _MISMATCH:
                return checked
        return _MISMATCH
    if origin is Literal:
        # bool is an int: Literal[1] must not accept True
        return value if any(value == a and type(value) is type(a) for a in typing.get_args(annotation)) \
            else _MISMATCH
    if annotation is type(None):
        return value if value is None else _MISMATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _MISMATCH
    if origin in (tuple, list, collections.abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
            return _MISMATCH
        return tuple(value) if origin is tuple else value
    target = origin or annotation
    return value if isinstance(value, target) else _MISMATCH
