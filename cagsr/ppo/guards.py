"""What keeps a PPO run from crashing or lying: NaN/Inf batch guards, one truncation warning per run,
and clear errors when the run folder stops taking writes (full disk, read-only remount).

    nan = NanGuard(max_bad_batches=3)
    if not nan.check(state, batch_is_finite(exp), nonfinite_reason(exp)):  # skip the batch
        ...
    with run_folder_write(run_dir, "metrics"):                            # OSError -> CagsrError
        logger.log(step, metrics)
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from cagsr.errors import CagsrError
from cagsr.ppo.experience import Experience

# formatting/history.py warns on every truncated prompt; a run reports the first one only.
TRUNCATION = re.compile(r"^history of \d+ turns exceeds \d+ tokens")


def batch_is_finite(exp: Experience) -> bool:
    tensors = (exp.rewards, exp.advantages, exp.returns, exp.old_logprobs, exp.ref_logprobs, exp.old_values)
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def nonfinite_reason(exp: Experience) -> str:
    """What made the batch non-finite, naming the reward part a user wrote when it was one of them:
    'reward/politeness returned NaN for 8 of 8 turns'. The attention reward is named only when no
    parts are configured (with parts it is part/attention, or unused)."""
    mask = exp.turn_mask.bool()
    parts = {f"reward/{k[5:]}": v for k, v in exp.components.items() if k.startswith("part/")}
    if not parts and "reward" in exp.components:
        parts = {"reward/attention": exp.components["reward"]}
    found = []
    for name, values in parts.items():
        bad = values[mask]
        bad = bad[~torch.isfinite(bad)]
        if bad.numel():
            kinds = "/".join(k for k, hit in (("NaN", bad.isnan().any()), ("Inf", bad.isinf().any())) if hit)
            found.append(f"{name} returned {kinds} for {bad.numel()} of {int(mask.sum())} turns")
    return "; ".join(found) or "NaN/Inf in rewards, advantages, log-probs or values"


@dataclass
class NanGuard:
    """Skip a bad batch with a warning and count it; stop after more than `max_bad_batches` in a row.

    The counters live in the TrainState (they are checkpointed); every input of the decision is
    identical on all ranks, so they skip (or stop) together."""

    max_bad_batches: int
    warn: bool = True
    """Only rank 0 warns."""
    last_reason: str = ""
    """Why the last batch was skipped (for the error when a run skipped every batch)."""

    def check(self, state, ok: bool, what: str) -> bool:
        if ok:
            state.bad_in_a_row = 0
            return True
        self.last_reason = what
        state.skipped_batches += 1
        state.bad_in_a_row += 1
        if self.warn:
            warnings.warn(
                f"iteration {state.iteration + 1}: {what}: batch skipped ({state.skipped_batches} so far)",
                stacklevel=3,
            )
        if state.bad_in_a_row > self.max_bad_batches:
            raise CagsrError(
                f"{state.bad_in_a_row} batches in a row had NaN/Inf values ({what}); stopping "
                "before a corrupted checkpoint is written (lower optimizer.lr or check the data and reward)"
            )
        return False

    def check_some_trained(self, skipped: int, iterations: int) -> None:
        """A run whose every batch was skipped (counted over the whole run, resumes included) trained
        nothing: fail instead of saving an untouched model as if it were trained."""
        if iterations and skipped >= iterations:
            raise CagsrError(
                f"all {iterations} batches of this run were skipped for NaN/Inf values ({self.last_reason}); "
                "nothing was trained and no model was written (check the data and reward)"
            )


@dataclass
class TruncationNotice:
    """Let the first 'history exceeds the context' warning of a run through, drop the rest."""

    enabled: bool = True
    """False on ranks other than 0."""
    reported: bool = False

    @contextmanager
    def __call__(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for w in caught:
            if TRUNCATION.match(str(w.message)):
                if self.reported or not self.enabled:
                    continue
                self.reported = True
                w.message = UserWarning(
                    f"{w.message} (oldest turns are dropped to fit rollout.max_context; "
                    "further truncations are not reported)"
                )
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def io_failure(err: Exception) -> str | None:
    """The user-facing reason when writing failed for lack of space or an I/O error, else None.

    torch.save reports a short write as a RuntimeError ("unexpected pos") and safetensors as its own
    error type, so the message is all there is to go on."""
    if isinstance(err, OSError):
        return err.strerror or str(err)
    text = str(err)
    if any(marker in text for marker in ("No space left", "I/O error", "os error", "unexpected pos")):
        return text.splitlines()[0] if text else type(err).__name__
    return None


@contextmanager
def run_folder_write(run_dir: Path, what: str):
    """A failed write into the run folder becomes one clear error that says the checkpoints are intact."""
    try:
        yield
    except Exception as err:
        reason = io_failure(err)
        if reason is None:
            raise
        raise CagsrError(
            f"{run_dir}: could not write the {what} ({reason}); the checkpoints are intact: "
            f"cagsr train --resume {run_dir}"
        ) from None


@contextmanager
def writer_threads_report_one_line():
    """TensorBoard writes from a thread of its own; when the disk fills up, that thread would print a
    traceback. Print one line instead (the main thread then stops with the same error)."""
    previous = threading.excepthook

    def hook(args) -> None:
        if args.exc_type is not None and issubclass(args.exc_type, OSError):
            # One write call: print() writes the newline separately, and the main thread's error
            # line could land between the two.
            sys.stderr.write(f"cagsr: a log writer thread stopped: {args.exc_value}\n")
            sys.stderr.flush()
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
