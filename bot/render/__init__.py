"""Rendering: typed results → ``OutboundMessage``s through the message catalogue (see ``replies``)."""

from bot.render.replies import render, render_one

__all__ = ["render", "render_one"]
