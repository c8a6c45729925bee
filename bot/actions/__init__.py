"""Actions: run the policy's actions against ``commerce`` and ``knowledge``; return typed results.

``Actions.run(turn, action)`` changes carts, orders, payments and conversation flags, never the
dialogue step (``bot.policy.machine.advance`` does, from the results) and never writes text (``bot.render``
does). The product flow is ``runner``; bookings of services are ``bot.actions.booking``; delivery
windows of paid orders ``bot.actions.delivery``.
"""

from bot.actions.runner import Actions

__all__ = ["Actions"]
