"""Understanding: one customer message (text + state references + context) → commands.

``Understander`` is the seam: ``RuleUnderstander`` (keyword rules over the knowledge index, the
default) implements it, and a language model can implement it too (issue 9). Understanding changes
nothing and does not know dialogue steps: it reads only references kept in the state (the item talked
about last, the item waiting for a variant, the options offered last). What a step accepts is
``bot.policy``'s job.
"""

from bot.understand.base import (
    DeliveryStatus,
    Understander,
    UnderstandingContext,
    Understood,
    Unresolved,
)
from bot.understand.rule_understander import RuleUnderstander

__all__ = ["DeliveryStatus", "RuleUnderstander", "Understander", "UnderstandingContext", "Understood", "Unresolved"]
