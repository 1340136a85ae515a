"""Rollout: generation engines, user simulators, and whole dialogue / chain-of-thought episodes."""
