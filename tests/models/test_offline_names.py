"""With no network, a model name that is neither a preset nor a folder fails at once: the hub is not asked."""

import pytest

from cagsr.errors import ModelError
from cagsr.models import registry


@pytest.fixture
def no_hub(monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("the hub loader must not run")

    monkeypatch.setattr(registry, "_path_loader", never)
    return monkeypatch


def test_offline_flag_fails_without_probing(no_hub):
    no_hub.setenv("HF_HUB_OFFLINE", "1")
    no_hub.setattr(registry.hub, "hub_reachable", lambda *a, **k: pytest.fail("no probe when offline is set"))
    with pytest.raises(ModelError, match="org/absent: not a preset .* and HF_HUB_OFFLINE is set"):
        registry.load_model("org/absent")


def test_unreachable_hub_fails_after_one_probe(no_hub):
    no_hub.delenv("HF_HUB_OFFLINE", raising=False)
    no_hub.delenv("TRANSFORMERS_OFFLINE", raising=False)
    probes = []
    no_hub.setattr(registry.hub, "hub_reachable", lambda *a, **k: probes.append(1) or False)
    with pytest.raises(ModelError, match="absent-model: .* huggingface.co cannot be reached"):
        registry.load_model("absent-model")
    assert probes == [1]


@pytest.mark.parametrize("name", ["./absent", "a model", "-x", "org/"])
def test_names_the_hub_would_reject_fail_before_any_lookup(name, no_hub):
    no_hub.setattr(registry.hub, "hub_reachable", lambda *a, **k: pytest.fail("no probe for an impossible name"))
    with pytest.raises(ModelError, match="not a preset"):
        registry.load_model(name)


def test_the_probe_is_bounded_for_an_unresolvable_host():
    assert registry.hub.hub_reachable("no-such-host.invalid", timeout=0.5) is False
