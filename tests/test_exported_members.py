"""The public surface is exactly ``genqueue.__all__``."""

from __future__ import annotations

import genqueue


def test_all_names_exist_and_nothing_else_is_public() -> None:
    public = {n for n in dir(genqueue) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(genqueue, n)).__name__ == "module"}
    assert set(genqueue.__all__) == public - modules
    for name in genqueue.__all__:
        assert getattr(genqueue, name) is not None
