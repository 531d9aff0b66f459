"""Copies of a frozen dataclass with some fields changed, for the publishing path's hottest
copies (a share's state, several times a share; a post, once a call).

``dataclasses.replace`` inspects every field's definition and runs ``__init__`` again on
each call (4-5 us for a share's state). A frozen dataclass without slots keeps its values in
its instance dict, so a copy is that dict copied in one C call (under 1 us). Only the copier
writes the new instance's dict: the class stays frozen to everyone else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def replacer(cls: type[T]) -> Callable[..., T]:
    """A ``replace(obj, **changes)`` for instances of ``cls`` (a frozen dataclass without slots).
    A name that is not a field raises ``TypeError``, as ``dataclasses.replace`` does."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} has slots: its values are not in an instance dict")
    names = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]

    def copy_with(obj: T, **changes: Any) -> T:
        if not changes.keys() <= names:
            raise TypeError(f"{cls.__name__} has no field {sorted(changes.keys() - names)}")
        new = object.__new__(cls)
        values = new.__dict__
        values.update(obj.__dict__)
        values.update(changes)
        return new

    return copy_with
