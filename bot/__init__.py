"""Dialogue engine: takes an ``InboundMessage``, returns ``OutboundMessage``s. Never imports channels."""
