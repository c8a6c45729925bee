"""Maps ``Inbox.kind`` to a ``Channel`` class. Built explicitly (no global registry).

Adapters can be registered as classes or lazily as ``"package.module:Class"`` paths: an adapter's
module (and its SDK — aiogram alone takes seconds to import) is loaded the first time an inbox of
that kind is used, so a process that serves only the web chat never pays for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points
from importlib.util import find_spec

from channels.base import Channel

ENTRY_POINT_GROUP = "chatcommerce.channels"

# kind → (module:Class, a module that must be importable for the adapter to be offered)
BUILTIN_ADAPTERS: dict[str, tuple[str, str | None]] = {
    "webchat": ("channels.webchat:WebChatChannel", None),
    "console": ("channels.console:ConsoleChannel", None),
    "telegram": ("channels.telegram:TelegramChannel", "aiogram"),
    "whatsapp_waha": ("channels.waha:WahaChannel", "httpx"),
    # The e-mail adapter needs the optional `email` extra (aioimaplib is GPL-3.0).
    "email": ("channels.email:EmailChannel", "aioimaplib"),
}


class ChannelRegistry:
    """Kind → adapter class. ``default()`` holds the adapters shipped with the engine."""

    def __init__(self, channels: Iterable[type[Channel]] = ()) -> None:
        self._classes: dict[str, type[Channel]] = {}
        self._lazy: dict[str, str] = {}
        for cls in channels:
            self.register(cls)

    def register(self, cls: type[Channel]) -> None:
        """Add an adapter class; raises ``ValueError`` when its kind is taken by another class."""
        existing = self._classes.get(cls.kind)
        if existing is not None and existing is not cls:
            raise ValueError(f"channel kind {cls.kind!r} is already registered by {existing.__qualname__}")
        self._lazy.pop(cls.kind, None)
        self._classes[cls.kind] = cls

    def register_lazy(self, kind: str, target: str) -> None:
        """Add an adapter by its ``"package.module:Class"`` path, imported on first use."""
        if kind in self._classes or kind in self._lazy:
            raise ValueError(f"channel kind {kind!r} is already registered")
        self._lazy[kind] = target

    def get(self, kind: str) -> type[Channel]:
        """The adapter class for ``kind`` (importing it if registered lazily); raises ``KeyError``
        naming the known kinds, ``TypeError`` when a lazy path is not a ``Channel`` of that kind."""
        cls = self._classes.get(kind)
        if cls is not None:
            return cls
        target = self._lazy.get(kind)
        if target is None:
            raise KeyError(f"no channel adapter for {kind!r}; known: {self.kinds()}")
        module_name, _, attr = target.partition(":")
        loaded = getattr(importlib.import_module(module_name), attr)
        if not (isinstance(loaded, type) and issubclass(loaded, Channel)) or loaded.kind != kind:
            raise TypeError(f"{target} is not a Channel adapter of kind {kind!r}")
        self.register(loaded)
        return loaded

    def kinds(self) -> list[str]:
        return sorted({*self._classes, *self._lazy})

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register adapters that installed packages declare in the ``chatcommerce.channels`` entry-point
        group (``kind = "package.module:ChannelClass"``), lazily. Returns the kinds added."""
        added: list[str] = []
        for ep in entry_points(group=group):
            self.register_lazy(ep.name, ep.value)
            added.append(ep.name)
        return added

    @classmethod
    def default(cls, *, entry_points: bool = True) -> ChannelRegistry:
        """The adapters shipped with the engine (those whose dependencies are installed), plus those
        of installed plugin packages."""
        registry = cls()
        for kind, (target, needs) in BUILTIN_ADAPTERS.items():
            if needs is None or find_spec(needs) is not None:
                registry.register_lazy(kind, target)
        if entry_points:
            registry.load_entry_points()
        return registry
