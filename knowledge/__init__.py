"""Knowledge base of a company: import (CSV/TSV/XLSX, Shopify export, owner sheets, FAQ) and retrieval.

The importer's public API lives in :mod:`knowledge.importer` (``parse_knowledge_file``,
``import_knowledge``, ``ImportResult``, ``KnowledgeImportError``). This package module imports nothing
so that ``import knowledge.<module>`` stays cheap and free of side effects.
"""
