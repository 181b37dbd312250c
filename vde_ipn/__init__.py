"""vde-ipn: an Inter Process Networking engine with drop-in VDE tools.

Layers, imports pointing inward only::

    cli  ->  io  ->  engine  ->  wire

``wire`` holds pure codecs, ``engine`` the sans-IO bus and delivery
policies, ``io`` the event loop and every file descriptor, ``cli`` the
command-line front ends.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
