"""Actions: run the policy's actions against ``commerce`` and ``knowledge``; return typed results.

``Actions.run(turn, action)`` changes carts, orders, payments and conversation flags, never the
dialogue step (``bot.policy.machine.advance`` does, from the results) and never writes text (``bot.render``
does). Delivery windows have their actions in ``bot.actions.delivery``. The booking dialogue
(``bot.booking``) is not split yet: it still writes its replies and steps itself and comes back as
``Replied``.
"""

from bot.actions.runner import Actions

__all__ = ["Actions"]
