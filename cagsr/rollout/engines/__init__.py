"""Generation engines behind one interface; `make_engine(name, loaded)` picks one by name."""

from cagsr.rollout.engines.base import Completion, Engine, SamplingConfig, make_engine, register_engine

__all__ = ["Completion", "Engine", "SamplingConfig", "make_engine", "register_engine"]
