"""cagsr: self-supervised RL fine-tuning of language models with history-aware attention rewards.

Data flow, one package per stage:
    data -> formatting -> rollout -> attention -> reward -> ppo -> evaluation
"""

__version__ = "0.1.0"
