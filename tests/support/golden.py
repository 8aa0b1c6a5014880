"""Golden files are compared as what they describe: the IR, not the SDK patch release that
wrote it (kfp>=2.17,<2.18 — a fresh environment may hold 2.17.3 where the goldens say 2.17.0)."""

from __future__ import annotations

import re

_SDK_VERSION = re.compile(r"sdkVersion: kfp-[0-9][0-9A-Za-z.+-]*")


def same_ir(committed: str, fresh: str) -> bool:
    def plain(text: str) -> str:
        return _SDK_VERSION.sub("sdkVersion: kfp-(any 2.17)", text)

    return plain(committed) == plain(fresh)
