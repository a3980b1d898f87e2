"""Size and shape limits on what the ingestion server accepts.

Shared by the backend (which rejects a package past them) and the exporter
(which must never build one). A conforming package is far inside every
limit: its JSON is at most 5 levels deep and an event carries a handful of
declared attrs with short names.
"""

from __future__ import annotations

# Deepest JSON nesting the server decodes; a package needs 5 (package > summary > events > event > attrs).
MAX_JSON_DEPTH = 32

# Attributes on one event, and the length of one attribute's key (characters).
MAX_ATTRS_PER_EVENT = 64
MAX_ATTR_KEY_LENGTH = 64
