"""Smotra: self-hosted server for distributed reachability monitoring."""

__version__ = "0.1.0"
