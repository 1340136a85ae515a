"""Supervised fine-tuning loop: cross-entropy on response tokens only, validation loss, checkpoint.

    cagsr sft --model smollm2-135m --data ../shared/data/gsm8k_train.jsonl --max-steps 30
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cagsr.config import to_dict
from cagsr.data.schema import Dialogue
from cagsr.data.sources import load_records, split_records
from cagsr.formatting.batching import collate_pairs
from cagsr.formatting.examples import Pair, supervised_pairs
from cagsr.models.checks import check_chat_template, check_context
from cagsr.models.forward import batch_nll, masked_token_nll, response_logits
from cagsr.models.registry import LoadedModel, load_model
from cagsr.rollout.generate import greedy_replies
from cagsr.sft.config import SFTConfig, SFTJob
from cagsr.utils.logging import MetricLogger
from cagsr.utils.run import check_run_dir, prepare_run_dir, seed_everything


@dataclass
class SFTResult:
    run_dir: Path
    """Where config, metrics, TensorBoard logs and the model folder were written."""
    val_losses: list[tuple[int, float]]
    """(step, validation loss) pairs, the first at step 0."""
    samples: list[dict]
    """Generated replies to validation prompts after training."""
    stopped_at: int | None = None
    """Step at which the validation loss had flattened (sft.patience), None when max_steps ran."""
    kept_step: int | None = None
    """Step whose weights were saved: the lowest validation loss with sft.keep_best, else the last."""


class BestWeights:
    """The weights at the lowest validation loss so far, copied to the CPU; a no-op when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.step, self.loss, self.state = enabled, 0, math.inf, None

    def update(self, model: torch.nn.Module, step: int, loss: float) -> None:
        if self.enabled and loss < self.loss:
            self.step, self.loss = step, loss
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def restore(self, model: torch.nn.Module, last_step: int) -> int:
        """Load the best weights into `model` unless they are the current ones; the step now held."""
        if not self.enabled or self.state is None:
            return last_step
        if self.step != last_step:
            model.load_state_dict(self.state)
        return self.step


def _batches(pairs: list[Pair], batch_size: int, rng: random.Random):
    """Endless shuffled minibatches (a new permutation each epoch)."""
    while True:
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            yield [pairs[i] for i in order[start : start + batch_size]]


def collate(loaded: LoadedModel, pairs: list[Pair]):
    return collate_pairs(
        [p.history.input_ids for p in pairs], [p.response_ids for p in pairs],
        loaded.tokenizer.pad_token_id, loaded.is_encoder_decoder,
    ).to(loaded.device)


def validation_loss(loaded: LoadedModel, pairs: list[Pair], batch_size: int) -> float:
    losses, weights = [], []
    loaded.model.eval()
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        losses.append(batch_nll(loaded.model, collate(loaded, chunk)))
        weights.append(sum(len(p.response_ids) for p in chunk))
    return sum(x * w for x, w in zip(losses, weights, strict=True)) / max(1, sum(weights))


def flattened(losses: list[float], patience: int, min_delta: float) -> bool:
    """True when the last `patience` validation losses all failed to fall below (1 - min_delta) times
    the best loss before them.

    >>> flattened([3.0, 2.0, 1.99, 1.985], patience=2, min_delta=0.01), flattened([3.0, 2.0, 1.5], 2, 0.01)
    (True, False)
    """
    if patience <= 0 or len(losses) <= patience:
        return False
    best = min(losses[:-patience])
    return all(loss > best * (1 - min_delta) for loss in losses[-patience:])


def lr_lambda(cfg: SFTConfig):
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def run_sft(job: SFTJob) -> SFTResult:
    """Train, log, save `run_dir/model` (loadable by cagsr and transformers) and sample replies."""
    seed_everything(job.run.seed)
    if job.run.threads:
        torch.set_num_threads(job.run.threads)
    check_run_dir(job.run.output_dir, job.run.overwrite)  # an earlier run's folder: refused before any work
    records = load_records(job.data)
    train_records, val_records = split_records(records, job.data.val_fraction, job.data.seed)
    loaded = load_model(job.model)
    cfg = job.sft
    check_context(loaded, {"sft.max_context": cfg.max_context}, {})
    check_chat_template(loaded, next((r.system_prompt for r in records if isinstance(r, Dialogue) and r.system_prompt), ""))
    train_pairs = supervised_pairs(train_records, loaded, cfg.max_context)
    val_pairs = supervised_pairs(val_records or train_records[:4], loaded, cfg.max_context)[: cfg.eval_pairs]
    run_dir = prepare_run_dir(job.run.output_dir, "sft", job)  # only once everything that can reject the input ran
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    logger = MetricLogger(run_dir, wandb=job.run.wandb, config=to_dict(job))
    val_losses = [(0, validation_loss(loaded, val_pairs, cfg.batch_size))]
    logger.log(0, {"loss/val": val_losses[0][1]})
    best = BestWeights(cfg.keep_best)
    best.update(loaded.model, 0, val_losses[0][1])
    batches = _batches(train_pairs, cfg.batch_size, random.Random(job.run.seed))
    stopped_at = None
    bar = tqdm(range(1, cfg.max_steps + 1), desc="sft", disable=not job.run.progress, dynamic_ncols=True)
    for step in bar:
        loaded.model.train()
        start = time.perf_counter()
        batch = collate(loaded, next(batches))
        loss = masked_token_nll(response_logits(loaded.model, batch), batch.response_ids, batch.response_mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(loaded.model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        metrics = {"loss/train": loss.item(), "policy/grad_norm": float(grad_norm),
                   "policy/lr": scheduler.get_last_lr()[0], "time/step": time.perf_counter() - start}
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            val_losses.append((step, validation_loss(loaded, val_pairs, cfg.batch_size)))
            metrics["loss/val"] = val_losses[-1][1]
            best.update(loaded.model, step, val_losses[-1][1])
        stop = flattened([v for _, v in val_losses], cfg.patience, cfg.min_delta) and "loss/val" in metrics
        if stop:
            metrics["sft/early_stop"] = 1.0
        logger.log(step, metrics)
        bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val_losses[-1][1]:.3f}")
        if stop:
            stopped_at = step
            break
    logger.close()
    kept_step = best.restore(loaded.model, step)
    loaded.model.eval()
    loaded.model.save_pretrained(run_dir / "model")
    loaded.tokenizer.save_pretrained(run_dir / "model")
    samples = greedy_replies(loaded, val_pairs[: cfg.samples], max_new_tokens=48)
    return SFTResult(run_dir=run_dir, val_losses=val_losses, samples=samples, stopped_at=stopped_at,
                     kept_step=kept_step)
