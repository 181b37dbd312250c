"""Log lines as the VDE tools do: ``prog: message`` on stderr, or syslog."""

from __future__ import annotations

import sys


class Logger:
    def __init__(self, ident: str, syslog_ident: str | None = None):
        self.ident = ident               # stderr prefix: argv[0] as given, like the C tools
        self.syslog_ident = syslog_ident or ident
        self._syslog = None

    def to_syslog(self) -> None:
        import syslog
        syslog.openlog(self.syslog_ident, syslog.LOG_PID, syslog.LOG_DAEMON)
        self._syslog = syslog

    def __call__(self, msg: str) -> None:
        if self._syslog is not None:
            self._syslog.syslog(self._syslog.LOG_INFO, msg)
            return
        try:
            sys.stderr.write("%s: %s\n" % (self.ident, msg))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
