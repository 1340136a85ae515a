"""Evaluation metrics: BLEU, BERTScore, coherence, accuracy, step correctness, latency, the consistency classifier."""
