"""HTTP routes: ``admin`` (``/api/v1``, admin token), ``webchat`` (public chat API and page), ``pay``."""
