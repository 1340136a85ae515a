"""Bias and variance of each advantage estimator's policy gradient on a multi-turn bandit (cagsr.bench.bandit).

    .venv/bin/python benchmarks/estimator_variance.py [--batches 4000] [--group-size 4] [--noise 0.5]

The exact gradient is known, so each row gives the mean sampled gradient's projection on it (1.00 =
unbiased; Dr. GRPO's group mean includes the episode itself: (n - 1) / n), the cosine between them, and the
gradient's total variance (trace of its covariance over batches) at the same number of episodes, also
divided by the squared projection (the variance of a step of the same expected length); the
critic rows (return, gae) run with V = 0 here, which is plain REINFORCE, the no-baseline reference.
Reported, not asserted: which estimator has the lowest variance depends on the reward's noise and the
group size. tests/ppo/test_estimators.py asserts the unbiasedness.
"""

from __future__ import annotations

import argparse

import torch

from cagsr.bench.bandit import BanditSpec, bandit_gradients
from cagsr.ppo.estimators import ADVANTAGE_ESTIMATORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=4000, help="independent batches per estimator")
    parser.add_argument("--group-size", type=int, default=4, help="episodes per group")
    parser.add_argument("--groups", type=int, default=4, help="groups per batch")
    parser.add_argument("--noise", type=float, default=0.5, help="std of the Gaussian noise on each turn's reward")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = BanditSpec(groups=args.groups, group_size=args.group_size, noise=args.noise)
    exact = spec.exact_gradient()
    print(f"bandit: {len(spec.rewards)} arms, rewards {spec.rewards}, episode lengths {spec.lengths}, "
          f"{spec.groups} groups x {spec.group_size} episodes, reward noise {spec.noise}; {args.batches} batches")
    print("\n| estimator | mean on the exact gradient (1 = unbiased) | cosine | gradient variance (trace) | x REINFORCE | "
          "variance / scale^2, x REINFORCE |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = {}
    for name in ADVANTAGE_ESTIMATORS:
        grads = bandit_gradients(name, spec, args.batches, args.seed)
        mean = grads.mean(0)
        rows[name] = (float(mean @ exact / (exact @ exact)),
                      float(torch.nn.functional.cosine_similarity(mean, exact, dim=0)),
                      float(grads.var(0).sum()))
    base = rows["return"][2]
    for name, (proj, cos, var) in sorted(rows.items(), key=lambda kv: kv[1][2]):
        label = f"{name} (V = 0: REINFORCE)" if ADVANTAGE_ESTIMATORS[name].uses_critic else name
        print(f"| {label} | {proj:.3f} | {cos:.4f} | {var:.5f} | {var / base:.2f} | {var / proj**2 / base:.2f} |")


if __name__ == "__main__":
    main()
