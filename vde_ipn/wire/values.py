"""Small value classes without ``dataclasses``.

``dataclasses`` pulls ``inspect``, ``ast``, ``dis`` and ``tokenize`` into
every process that imports it: over a megabyte of RSS in a switch whose
own state is a few hundred kilobytes.  The classes here give what the
switch's records used from it, on ``__slots__`` (no per-instance dict):

* :class:`Value`: ``repr`` as ``Name(field=value, ...)`` and equality
  field by field with instances of the same class; mutable, unhashable.
* :class:`FrozenValue`: the same, read-only after ``__init__`` and
  hashable.

A subclass lists its fields, in order, as ``__slots__`` and sets them in
its ``__init__`` (a frozen one through :meth:`FrozenValue._init`).
"""

from __future__ import annotations


class Value:
    __slots__ = ()

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__qualname__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name in self.__slots__))

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._fields() == other._fields()
        return NotImplemented

    __hash__ = None                      # type: ignore[assignment]


class FrozenValue(Value):
    __slots__ = ()

    def _init(self, *values) -> None:
        """Set the fields, in ``__slots__`` order."""
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("cannot assign to field %r of a frozen %s"
                             % (name, type(self).__name__))

    def __delattr__(self, name):
        raise AttributeError("cannot delete field %r of a frozen %s"
                             % (name, type(self).__name__))

    def __hash__(self) -> int:
        return hash(self._fields())
