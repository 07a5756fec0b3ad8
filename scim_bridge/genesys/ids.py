"""What a Genesys id may look like before it goes into a URL path (issue 14).

Genesys ids are UUIDs (async job ids similar). Anything else (``../users/x``, ``%2F``, spaces, a
kilobyte of text) cannot name a Genesys object: it is refused as not found, without a call.
"""

from __future__ import annotations

import re

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None
