"""Evaluation (method.md sections 6-7): quality metrics, the consistency classifier, reward models
trained on synthetic or human preferences, and reward-validity analysis.

    metrics        BLEU, BERTScore, coherence, answer accuracy, step correctness, latency, Spearman CI
    consistency    on-topic classifier: ensure_consistency_classifier(dialogues).acceptance_rate(c, r)
    reward_model   train_bradley_terry(pairs) / train_pointwise(labelled) -> RewardModel.score(c, r)
    preferences    synthetic_preference_pairs(records), read_preference_file(path)
    taskmaster     read_taskmaster_rewards(path): human 0/1 labels with API calls as text
    validity       validity_table(rows), reward_hacking_check(history), validity_plot(rows, path)
    step_threshold python -m cagsr.evaluation.metrics.step_threshold GSM8K.jsonl: the measurement behind 0.85

Submodules are imported on use: the heavy ones load sentence-transformers and bert_score lazily.
"""
