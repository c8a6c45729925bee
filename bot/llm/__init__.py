"""The language-model mode (issue 9): a model speaks to the customer through the dialogue engine's
commands (``bot.commands`` as tools), under the same policy guards, with guardrails on its replies.

Modules: ``config`` (assistant and model-server settings), ``client`` (the OpenAI SDK behind a
per-tenant circuit breaker), ``context`` (the prompt), ``guard`` (facts in a reply must come from tools),
``usage`` (tokens, cost, budget and the assist share), ``summary`` (the running summary of older
turns), ``assistant`` (the tool loop).
"""
