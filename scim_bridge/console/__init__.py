"""The operator console: named operators (``scim-bridge operators``) and the pages under
``/admin/ui`` (views.py). docs/console.md describes both."""

from scim_bridge.console.views import Parts, init_app

__all__ = ["Parts", "init_app"]
