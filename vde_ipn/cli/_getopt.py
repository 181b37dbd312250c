"""Faithful emulation of glibc (2.36) ``getopt_long`` / ``getopt_long_only``.

The drop-in tools must accept exactly the command lines their C originals
accept, reject exactly what they reject and print the same diagnostics, so
this module reproduces the C library's parser decision for decision instead
of using :mod:`argparse` or :mod:`getopt` (both differ in many corners:
``getopt_long_only`` single-dash long options, argument permutation,
abbreviation/ambiguity rules, ``-W foo``, the message texts).

Contract
--------
``getopt_long(argv, shortopts, longopts)`` behaves like calling the C
function in a loop until it returns -1, starting from a fresh state
(``optind = 1``, ``opterr = 1``), with ``flag = NULL`` for every long option:

* ``shortopts`` uses the C syntax: a letter, ``x:`` (required argument),
  ``x::`` (optional argument, only attached: ``-xVAL``), ``W;`` (``-W name``
  means ``--name``).  A leading ``+`` stops at the first non-option, a
  leading ``-`` reports non-options in place with key :data:`NONOPT_KEY`,
  otherwise non-options are permuted to the end unless ``POSIXLY_CORRECT``
  is set in ``env``.  A ``:`` (after the optional ``+``/``-``) silences
  diagnostics and makes a missing argument return ``':'`` instead of ``'?'``.
* Each returned option becomes ``(key, optarg)`` in ``GetoptResult.opts``;
  ``optarg`` is None when C's ``optarg`` would be NULL.
* An error becomes ``('?', text)`` (``(':', text)`` for a missing argument
  in ``:`` mode), where ``text`` is the option as the diagnostic quotes it:
  the character for short options (``'q'``), the dash form for long ones
  (``'--bogus=3'``, ``'-sock'``).  Note that C returns ``'?'`` too for a
  legitimate ``?`` short option, so callers with ``?`` in ``shortopts``
  must look at ``errors`` (or avoid ``:`` mode) to tell them apart.
* ``GetoptResult.operands`` is ``argv[optind:]`` after the permutation.
* ``GetoptResult.errors`` holds the lines glibc would write to stderr,
  prefixed with ``argv[0]`` verbatim, without newlines.  Nothing is printed.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False                    # typing is not loaded at run time (memory)
if TYPE_CHECKING:
    from typing import List, Mapping, Optional, Sequence, Tuple

from ..wire.values import FrozenValue

__all__ = [
    "NO_ARG", "REQUIRED_ARG", "OPTIONAL_ARG", "NONOPT_KEY",
    "LongOpt", "GetoptResult", "getopt_long", "getopt_long_only",
]

NO_ARG = 0
REQUIRED_ARG = 1
OPTIONAL_ARG = 2

#: Key of a non-option reported in place (optstring starting with ``-``);
#: it is chr() of the value 1 that C returns for them.
NONOPT_KEY = "\x01"

# Orderings, as in glibc.
_PERMUTE, _REQUIRE_ORDER, _RETURN_IN_ORDER = range(3)


class LongOpt(FrozenValue):
    """One entry of the long option table (``struct option`` with flag NULL).

    ``key`` plays the role of ``val``: it is what the parser reports when the
    option is used, and two entries with the same ``key`` and ``has_arg`` are
    treated as synonyms when an abbreviation matches both (getopt_long only).
    """

    __slots__ = ("name", "has_arg", "key")

    def __init__(self, name: str, has_arg: int, key: str) -> None:
        if has_arg not in (NO_ARG, REQUIRED_ARG, OPTIONAL_ARG):
            raise ValueError(f"has_arg must be 0, 1 or 2, not {has_arg!r}")
        self._init(name, has_arg, key)


class GetoptResult(FrozenValue):
    """Outcome of a full parse; see the module docstring for each field."""

    __slots__ = ("opts", "operands", "errors")

    def __init__(self, opts: List[Tuple[str, Optional[str]]], operands: List[str],
                 errors: List[str]) -> None:
        self._init(opts, operands, errors)


def _is_nonoption(word: str) -> bool:
    # "-" alone is an operand (conventionally stdin), as is anything
    # that does not start with a dash.
    return not word.startswith("-") or word == "-"


class _Parser:
    """State of one parse; fields mirror glibc's ``struct _getopt_data``."""

    def __init__(self, argv: List[str], shortopts: str,
                 longopts: Sequence[LongOpt], long_only: bool,
                 env: Mapping[str, str]) -> None:
        self.argv = argv
        self.prog = argv[0] if argv else ""
        self.longopts = tuple(longopts)
        self.long_only = long_only
        # Only one leading ordering character is consumed; whatever follows
        # (including a second '+' or '-') is part of the option letters.
        if shortopts.startswith("-"):
            self.order, shortopts = _RETURN_IN_ORDER, shortopts[1:]
        elif shortopts.startswith("+"):
            self.order, shortopts = _REQUIRE_ORDER, shortopts[1:]
        elif "POSIXLY_CORRECT" in env:  # any value, even empty, counts
            self.order = _REQUIRE_ORDER
        else:
            self.order = _PERMUTE
        self.spec = shortopts
        self.quiet = shortopts.startswith(":")
        self.missing_key = ":" if self.quiet else "?"
        self.optind = 1
        # argv[first_nonopt:last_nonopt] are operands already skipped over
        # and still waiting to be moved behind the options that follow them.
        self.first_nonopt = self.last_nonopt = 1
        self.rest = ""  # unparsed tail of a short-option cluster ("nextchar")
        self.opts: List[Tuple[str, Optional[str]]] = []
        self.errors: List[str] = []

    # -- helpers ----------------------------------------------------------
    def _error(self, message: str) -> None:
        if not self.quiet:
            self.errors.append(f"{self.prog}: {message}")

    def _emit(self, key: str, value: Optional[str]) -> bool:
        self.opts.append((key, value))
        return True

    def _exchange(self) -> None:
        """Move the skipped operands behind the options parsed after them."""
        f, l, o = self.first_nonopt, self.last_nonopt, self.optind
        self.argv[f:o] = self.argv[l:o] + self.argv[f:l]
        self.first_nonopt = f + (o - l)
        self.last_nonopt = o

    # -- one getopt() call -----------------------------------------------
    def step(self) -> bool:
        """Do what one C call does; False when it would return -1."""
        argv, argc = self.argv, len(self.argv)
        if not self.rest:
            if self.order == _PERMUTE:
                if self.first_nonopt != self.last_nonopt and self.last_nonopt != self.optind:
                    self._exchange()
                elif self.last_nonopt != self.optind:
                    self.first_nonopt = self.optind
                while self.optind < argc and _is_nonoption(argv[self.optind]):
                    self.optind += 1
                self.last_nonopt = self.optind
            if self.optind != argc and argv[self.optind] == "--":
                # "--" is treated as an option (moved before the pending
                # operands) and everything after it as operands.
                self.optind += 1
                if self.first_nonopt != self.last_nonopt and self.last_nonopt != self.optind:
                    self._exchange()
                elif self.first_nonopt == self.last_nonopt:
                    self.first_nonopt = self.optind
                self.last_nonopt = argc
                self.optind = argc
            if self.optind == argc:
                if self.first_nonopt != self.last_nonopt:
                    self.optind = self.first_nonopt
                return False
            word = argv[self.optind]
            if _is_nonoption(word):
                if self.order == _REQUIRE_ORDER:
                    return False
                self.optind += 1
                return self._emit(NONOPT_KEY, word)
            if word[1] == "-":
                return self._long(word[2:], "--", self.long_only)
            # long_only: "-x" with x a valid short option stays the short
            # option (otherwise it could never be given); any longer word,
            # or an unknown letter, is first tried as a long option.
            if self.long_only and (len(word) > 2 or word[1] not in self.spec):
                if self._long(word[1:], "-", True):
                    return True
            self.rest = word[1:]
        return self._short()

    def _short(self) -> bool:
        c, self.rest = self.rest[0], self.rest[1:]
        if not self.rest:
            self.optind += 1  # the cluster's last character is being used
        pos = self.spec.find(c)
        if pos < 0 or c in ":;":
            self._error(f"invalid option -- '{c}'")
            return self._emit("?", c)
        follow = self.spec[pos + 1:pos + 3]
        if c == "W" and follow.startswith(";"):
            # "-W foo" / "-Wfoo" is "--foo", never matched long_only-style.
            if self.rest:
                text = self.rest
            elif self.optind == len(self.argv):
                self._error(f"option requires an argument -- '{c}'")
                return self._emit(self.missing_key, c)
            else:
                text = self.argv[self.optind]
            self.rest = ""
            return self._long(text, "-W ", False)
        if not follow.startswith(":"):
            return self._emit(c, None)
        arg: Optional[str] = None
        if follow == "::":
            # An optional argument must be attached; the next word is
            # never taken.
            if self.rest:
                arg = self.rest
                self.optind += 1
        elif self.rest:
            arg = self.rest
            self.optind += 1
        elif self.optind == len(self.argv):
            self.rest = ""
            self._error(f"option requires an argument -- '{c}'")
            return self._emit(self.missing_key, c)
        else:
            arg = self.argv[self.optind]
            self.optind += 1
        self.rest = ""
        return self._emit(c, arg)

    def _long(self, text: str, prefix: str, long_only: bool) -> bool:
        """Handle ``text`` (word minus ``prefix``) as a long option.

        Returns False only when getopt_long_only gives up on a single-dash
        word so that it is reparsed as short options.
        """
        name, has_value, value = text.partition("=")
        table = self.longopts
        found = next((i for i, o in enumerate(table) if o.name == name), None)
        if found is None:
            matches = [i for i, o in enumerate(table) if o.name.startswith(name)]
            if matches:
                first = table[matches[0]]
                # Every later match is compared with the FIRST one only;
                # getopt_long_only treats any second match as a clash.
                clashes = [i for i in matches[1:]
                           if long_only or table[i].has_arg != first.has_arg
                           or table[i].key != first.key]
                if clashes:
                    shown = "".join(f" '{prefix}{table[i].name}'"
                                    for i in [matches[0]] + clashes)
                    self._error(f"option '{prefix}{text}' is ambiguous; possibilities:{shown}")
                    self.rest = ""
                    self.optind += 1
                    return self._emit("?", prefix + text)
                found = matches[0]
        if found is None:
            # With long_only, a single-dash word whose first letter is a
            # short option falls back to short parsing ("-nostdin" is
            # "-n ostdin" when no long option starts with "nostdin").
            if not long_only or prefix == "--" or text[0] not in self.spec:
                self._error(f"unrecognized option '{prefix}{text}'")
                self.rest = ""
                self.optind += 1
                return self._emit("?", prefix + text)
            return False
        opt = table[found]
        self.optind += 1
        self.rest = ""
        if has_value:
            if opt.has_arg == NO_ARG:
                # Always '?', even in ':' mode.
                self._error(f"option '{prefix}{opt.name}' doesn't allow an argument")
                return self._emit("?", prefix + opt.name)
            return self._emit(opt.key, value)
        if opt.has_arg == REQUIRED_ARG:
            if self.optind < len(self.argv):
                self.optind += 1
                return self._emit(opt.key, self.argv[self.optind - 1])
            self._error(f"option '{prefix}{opt.name}' requires an argument")
            return self._emit(self.missing_key, prefix + opt.name)
        return self._emit(opt.key, None)


def getopt_long(argv: Sequence[str], shortopts: str,
                longopts: Sequence[LongOpt] = (), *, long_only: bool = False,
                env: Optional[Mapping[str, str]] = None) -> GetoptResult:
    """Parse ``argv`` (``argv[0]`` = program name) like glibc getopt_long.

    ``long_only=True`` gives getopt_long_only semantics.  ``env`` is only
    consulted for ``POSIXLY_CORRECT``; it defaults to :data:`os.environ`.
    ``argv`` is not modified.  Words cannot contain NUL (as in C).
    """
    if not argv:  # argc < 1: C returns -1 at once
        return GetoptResult([], [], [])
    parser = _Parser(list(argv), shortopts, longopts, long_only,
                     os.environ if env is None else env)
    while parser.step():
        pass
    return GetoptResult(parser.opts, parser.argv[parser.optind:], parser.errors)


def getopt_long_only(argv: Sequence[str], shortopts: str,
                     longopts: Sequence[LongOpt] = (), *,
                     env: Optional[Mapping[str, str]] = None) -> GetoptResult:
    """getopt_long_only: single-dash words are tried as long options first."""
    return getopt_long(argv, shortopts, longopts, long_only=True, env=env)
