"""Reward models trained on preferences (Bradley-Terry, pointwise), the pairs they train on, task rewards."""
