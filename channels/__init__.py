"""Channels: the ``Channel`` adapter interface, its registry, adapters and the inbound pipeline."""
