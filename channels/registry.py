"""Maps ``Inbox.kind`` to a ``Channel`` class. Built explicitly (no global registry)."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from channels.base import Channel

ENTRY_POINT_GROUP = "chatcommerce.channels"


class ChannelRegistry:
    """Kind → adapter class. ``default()`` holds the adapters shipped with the engine."""

    def __init__(self, channels: Iterable[type[Channel]] = ()) -> None:
        self._classes: dict[str, type[Channel]] = {}
        for cls in channels:
            self.register(cls)

    def register(self, cls: type[Channel]) -> None:
        """Add an adapter class; raises ``ValueError`` when its kind is taken by another class."""
        existing = self._classes.get(cls.kind)
        if existing is not None and existing is not cls:
            raise ValueError(f"channel kind {cls.kind!r} is already registered by {existing.__qualname__}")
        self._classes[cls.kind] = cls

    def get(self, kind: str) -> type[Channel]:
        """The adapter class for ``kind``; raises ``KeyError`` naming the known kinds."""
        try:
            return self._classes[kind]
        except KeyError:
            raise KeyError(f"no channel adapter for {kind!r}; known: {sorted(self._classes)}") from None

    def kinds(self) -> list[str]:
        return sorted(self._classes)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register adapters that installed packages declare in the ``chatcommerce.channels`` entry-point
        group (``kind = "package.module:ChannelClass"``). Returns the kinds added."""
        added: list[str] = []
        for ep in entry_points(group=group):
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Channel)):
                raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a Channel subclass")
            self.register(cls)
            added.append(cls.kind)
        return added

    @classmethod
    def default(cls, *, entry_points: bool = True) -> ChannelRegistry:
        """The adapters shipped with the engine, plus those of installed plugin packages."""
        from channels.console import ConsoleChannel
        from channels.telegram import TelegramChannel
        from channels.waha import WahaChannel
        from channels.webchat import WebChatChannel

        registry = cls([WebChatChannel, ConsoleChannel, TelegramChannel, WahaChannel])
        try:  # the e-mail adapter needs the optional `email` extra (aioimaplib is GPL-3.0)
            from channels.email import EmailChannel
        except ImportError:
            pass
        else:
            registry.register(EmailChannel)
        if entry_points:
            registry.load_entry_points()
        return registry
