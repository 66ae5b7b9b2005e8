"""Testing: pytest fixtures for projects that use ape-treasury, on a real anvil.

`plugin` is the pytest11 entry point (fixtures that deploy the Safe infrastructure and build a
guarded test treasury on top of ape's own `accounts`, `chain` and `project` fixtures); `fixtures`
holds the builders it uses, importable for scripts too.
The names below are importable from here and load their module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from treasury._lazy import lazy_exports

_EXPORTS = {"treasury.testing.fixtures": ("deploy_test_token", "make_test_treasury")}
__all__ = ["deploy_test_token", "make_test_treasury"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from treasury.testing.fixtures import deploy_test_token, make_test_treasury
