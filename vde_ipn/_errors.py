"""The one exception tree of vde-ipn."""


class VdeIpnError(Exception):
    """Root of every error raised on purpose by vde-ipn."""


class ProtocolError(VdeIpnError):
    """Bytes that break a VDE protocol rule (never raised directly)."""

    def __init__(self, msg: str):
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError")
        super().__init__(msg)


class LocalProtocolError(ProtocolError):
    """We were asked to produce something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class EndpointClosed(VdeIpnError):
    """The endpoint was closed on our side."""


class EndpointBroken(VdeIpnError):
    """The peer or the OS closed the endpoint (the OSError is the __cause__)."""


class NoFreePort(VdeIpnError):
    """No port could be given to a client."""


class PortInUse(VdeIpnError):
    """The requested port is held by another user or cannot be joined."""


class ConnectError(VdeIpnError):
    """Opening a VDE address failed; ``errno`` says why, as libvdeplug would."""

    def __init__(self, errno: int, msg: str):
        super().__init__(msg)
        self.errno = errno


class UsageError(VdeIpnError):
    """Bad command-line or console input."""
