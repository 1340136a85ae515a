"""Whether the Hugging Face hub may and can be asked: data and models fail at once without it instead of
letting huggingface_hub retry an unreachable host for ~25 s and log every retry."""

from __future__ import annotations

import os
import socket
import threading

HUB_HOST = "huggingface.co"
HUB_PROBE_SECONDS = 3.0


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE, HF_DATASETS_OFFLINE) is set: the hub must not be asked."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(host: str = HUB_HOST, timeout: float = HUB_PROBE_SECONDS) -> bool:
    """One TCP connection to the hub, bounded in time (name resolution included, which socket timeouts do
    not bound)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_unavailable() -> str:
    """Why the hub cannot be asked now ('' when it can)."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set"
    return "" if hub_reachable() else f"{HUB_HOST} cannot be reached"
