"""`cagsr bench`: per-turn latency of every generation engine, with and without attention capture."""

from cagsr.bench.config import BenchConfig
from cagsr.bench.run import run

__all__ = ["BenchConfig", "run"]
