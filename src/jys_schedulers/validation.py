# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Argument checks shared by the library's public entry points (one message format everywhere)."""

from __future__ import annotations


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return `value` if it is an `int` (not a `bool`) `>= minimum`.

    Raises:
        TypeError: `value` is not an int (a `bool` is rejected too); the message names `name`.
        ValueError: `value < minimum`; the message names `name` and `minimum`.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int >= {minimum}, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value}.")
    return value


__all__ = ["check_int"]
