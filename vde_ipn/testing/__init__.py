"""Helpers for testing code built on vde_ipn without real sockets."""

from .clock import FakeClock

__all__ = ["FakeClock"]
