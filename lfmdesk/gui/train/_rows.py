"""Model-bar rows for finished adapters, each right under the row of its base model.

rows = with_adapters(model_rows())   # variants, then "↳ adapter NAME" under its base
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from lfmdesk.core.train._store import list_adapters
from lfmdesk.gui.models._model_bar import ModelRow

__all__ = ["with_adapters"]


def with_adapters(rows: Sequence[ModelRow]) -> list[ModelRow]:
    """``rows`` without old adapter rows, plus one row per finished adapter in the store.

    An adapter whose base is not listed (a local folder) gets that folder's row first.
    """
    out = [r for r in rows if not r.adapter]
    for entry in list_adapters():
        info = entry.info
        if info is None:
            continue
        spec = info.base.spec
        base = next((r for r in out if r.spec == spec and not r.adapter), None)
        if base is None:  # a local folder not listed yet
            base = ModelRow(spec, os.path.basename(spec) or spec, 0, os.path.isdir(spec))
            out.append(base)
        row = ModelRow(
            spec=spec,
            title=f"{base.title.partition(' · ')[0]} · ↳ adapter {info.name}",
            size_bytes=0,
            downloaded=base.downloaded,
            adapter=info.name,
        )
        last = max(i for i, r in enumerate(out) if r.spec == spec)
        out.insert(last + 1, row)
    return out
