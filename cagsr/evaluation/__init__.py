"""Evaluation (method.md sections 6-7), split by responsibility:

    config.py, runner.py   the `cagsr eval` job: generate on a split, compute every metric that applies
    metrics/               what a reply or solution scores: BLEU, BERTScore, coherence, answer accuracy,
                           step correctness, latency (scores), the on-topic consistency classifier, the
                           sentence embedder they share, the quality proxy of training, the step threshold
    reward_models/         reward models trained on preferences (Bradley-Terry, pointwise), the synthetic
                           preferences they train on, task rewards (answer correctness)
    analysis/              statistics over rows: the one bootstrap (analysis/bootstrap.py), reward validity
                           (Spearman, AUC, the human-label report), paired differences and verdicts,
                           calibration of the reward's weights, Markdown tables

Readers of labelled data live in cagsr.data (labelled.py, taskmaster.py). Submodules are imported on
use: the heavy ones load sentence-transformers and bert_score lazily.
"""
