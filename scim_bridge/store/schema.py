"""Every table the bridge keeps, declared once (SQLAlchemy Core).

Each part owns its tables' meaning; the declarations live here so that one migration path
creates and upgrades them all.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
