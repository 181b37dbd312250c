"""Log lines as the VDE tools do: ``prog: message`` on stderr, or syslog."""

from __future__ import annotations

import os
import sys
import syslog

# syslog priorities, re-exported so callers need not import syslog
LOG_ERR = syslog.LOG_ERR
LOG_WARNING = syslog.LOG_WARNING
LOG_INFO = syslog.LOG_INFO


class Logger:
    """``printlog()`` of the C tools.

    Until :meth:`to_syslog` is called every message goes to stderr as
    ``<ident>: <message>`` (``ident`` is argv[0] exactly as given); after
    it, to syslog with the tool's name and pid.
    """

    def __init__(self, ident: str, syslog_ident: str | None = None):
        self.ident = ident
        self.syslog_ident = syslog_ident or os.path.basename(ident)
        self._syslog = False

    def to_syslog(self, facility: int = syslog.LOG_DAEMON) -> None:
        syslog.openlog(self.syslog_ident, syslog.LOG_PID, facility)
        self._syslog = True

    @property
    def to_stderr(self) -> bool:
        return not self._syslog

    def __call__(self, msg: str, priority: int = LOG_INFO) -> None:
        if self._syslog:
            syslog.syslog(priority, msg)
            return
        try:
            sys.stderr.write("%s: %s\n" % (self.ident, msg))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
