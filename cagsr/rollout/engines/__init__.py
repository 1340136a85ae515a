"""Generation engines behind one interface; `make_engine(name, loaded)` picks one by name."""

from cagsr.rollout.engines.base import ENGINES, Completion, Engine, SamplingConfig, make_engine

__all__ = ["ENGINES", "Completion", "Engine", "SamplingConfig", "make_engine"]
