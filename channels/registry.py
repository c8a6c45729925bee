"""Maps ``Inbox.kind`` to a ``Channel`` class. Built explicitly (no global registry)."""

from __future__ import annotations

from collections.abc import Iterable

from channels.base import Channel


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

    @classmethod
    def default(cls) -> ChannelRegistry:
        from channels.console import ConsoleChannel
        from channels.webchat import WebChatChannel

        return cls([WebChatChannel, ConsoleChannel])
