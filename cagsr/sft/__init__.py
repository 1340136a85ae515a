"""Supervised fine-tuning: cross-entropy on agent turns (dialogues) or solutions (math)."""
