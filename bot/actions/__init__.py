"""Actions: run the policy's actions against ``commerce`` and ``knowledge``; return typed results.

``Actions.run(turn, action)`` changes carts, orders, payments and conversation flags, never the
dialogue step (``bot.policy.advance`` does, from the results) and never writes text (``bot.render``
does). The booking and delivery dialogues (``bot.booking``, ``bot.delivery``) are not split yet: they
still write their replies and steps themselves and come back as ``Replied``.
"""

from bot.actions.runner import Actions

__all__ = ["Actions"]
