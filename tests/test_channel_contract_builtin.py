"""The channel contract (tests/channel_contract.py) on the built-in adapters: web chat and console.

Neither has a provider to push to (replies travel in the HTTP response or go to the terminal), nor
signatures (the web chat is public, the console is local): those checks are skipped with the reason.
"""

from __future__ import annotations

import json

import pytest

from channels.base import RawRequest
from channels.console import ConsoleChannel
from channels.registry import ChannelRegistry
from channels.webchat import WebChatChannel
from tests.channel_contract import ChannelContract, ContractHarness, ExpectedInbound


class TestWebChatContract(ChannelContract):
    @pytest.fixture
    def harness(self) -> ContractHarness:
        # The route puts the visitor it verified in query["visitor"]; a "contact" in the body is ignored.
        body = json.dumps({"contact": "someone-else", "text": "Do you ship to Lisbon?", "message_id": "m-0001",
                           "name": "Rita"}).encode()
        visitor = {"visitor": "web-7f3a"}
        return ContractHarness(
            channel=WebChatChannel(),
            delivery=RawRequest(headers={"content-type": "application/json"}, body=body, query=visitor),
            expected=ExpectedInbound(contact_source_id="web-7f3a", text="Do you ship to Lisbon?",
                                     source_id="web-7f3a:m-0001", contact_name="Rita"),
            recipient="web-7f3a",
            outbox=None,
            no_signature_reason="the web chat is public; the route verifies the visitor's signed identity",
            malformed_delivery=RawRequest(headers={}, body=b"\xff\xfe not a provider payload {", query=visitor),
            returns_provider_ids=False,
        )


def test_webchat_refuses_a_delivery_without_a_verified_visitor() -> None:
    body = json.dumps({"contact": "visitor-7f3a", "text": "hi"}).encode()
    with pytest.raises(ValueError, match="visitor"):
        WebChatChannel().parse(RawRequest(headers={}, body=body))


class TestConsoleContract(ChannelContract):
    @pytest.fixture
    def harness(self) -> ContractHarness:
        return ContractHarness(
            channel=ConsoleChannel(),
            delivery=RawRequest(headers={}, body=b"Do you ship to Lisbon?\n",
                                query={"contact": "alice", "message_id": "c-1"}),
            expected=ExpectedInbound(contact_source_id="alice", text="Do you ship to Lisbon?", source_id="c-1"),
            recipient="alice",
            outbox=None,
            no_signature_reason="console input comes from the developer's own terminal",
            # A line without a contact id is the console's malformed delivery; an empty line carries no message.
            malformed_delivery=RawRequest(headers={}, body=b"hello"),
            non_message_delivery=RawRequest(headers={}, body=b"   \n", query={"contact": "alice"}),
            returns_provider_ids=False,
        )


def test_default_registry_kinds_are_unique() -> None:
    registry = ChannelRegistry.default()
    assert {"webchat", "console"} <= set(registry.kinds())


def test_registry_loads_adapters_lazily_and_from_entry_points(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Adapters are offered by kind without importing their SDKs; a plugin package's entry point adds a
    kind; a kind nobody provides is a clear error."""
    import sys
    from importlib.metadata import EntryPoint

    from channels import registry as registry_module

    plugin = EntryPoint(name="webchat2", value="tests.test_channel_contract_builtin:PluginChannel",
                        group="chatcommerce.channels")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [plugin] if group == plugin.group else [])
    reg = ChannelRegistry.default()
    assert {"webchat", "console", "telegram", "whatsapp_waha", "webchat2"} <= set(reg.kinds())
    assert reg.get("webchat2") is PluginChannel
    assert reg.get("telegram").kind == "telegram" and "aiogram" in sys.modules
    try:
        reg.get("carrier-pigeon")
    except KeyError as exc:
        assert "carrier-pigeon" in str(exc) and "telegram" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown kind accepted")



class PluginChannel(WebChatChannel):  # type: ignore[misc]
    """A stand-in for a third-party adapter package (same wire format as the web chat)."""

    kind = "webchat2"
