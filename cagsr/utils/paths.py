"""Where cagsr caches converted models and fitted artefacts (`CAGSR_HOME`)."""

from __future__ import annotations

import os
from pathlib import Path


def cagsr_home() -> Path:
    """$CAGSR_HOME, else ~/.cache/cagsr (XDG_CACHE_HOME respected)."""
    env = os.environ.get("CAGSR_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cagsr"
