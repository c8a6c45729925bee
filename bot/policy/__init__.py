"""The policy: what the current dialogue step accepts, and what each accepted command turns into.

``decide(state, commands, text=...)`` is the only place that reads the dialogue step to interpret a
message (understanding reads references only). Guards per step:

* checkout questions (name, address, phone): ``cancel``, ``handoff``, ``give_details`` and (phone)
  ``skip`` are accepted; a bare command word is not an answer (asked again); a side question (a price,
  an item, the FAQ, the cart: "how much is shipping?") is answered and the question asked again;
  anything else is the answer to the question asked (free text: a name, an address);
* the booking's name question: a side question likewise; a new request (a time, a booking command, a
  question) leaves it; otherwise the text is the name (and phone); the delivery city question likewise;
* "cancel this booking?": yes / ``cancel_booking`` confirms, no / ``skip`` / ``cancel`` keeps it;
* ``choose`` is resolved against the options offered at this step (times, bookings, windows, items);
* elsewhere every command is accepted in the order said; a greeting said with a request is dropped.

``bot.policy.machine.advance(state, result)`` applies the actions' results to the state (the next
question, the references kept): the state machine lives in this package only.
"""

from bot.policy.decide import Action, decide

__all__ = ["Action", "decide"]
