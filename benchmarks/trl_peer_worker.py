"""One TRL trainer, stepped from benchmarks/trl_peer.py: runs inside a TRL venv (.venv-trl-ppo or .venv-trl-grpo).

    .venv-trl-ppo/bin/python benchmarks/trl_peer_worker.py --kind ppo --model DIR --prompts FILE ...

The trainer is built, then `train()` runs with a callback that blocks between steps: the worker prints
`@@trl-peer {"ready": true}` when training begins, then per `go` line on stdin it lets one step run and prints
`@@trl-peer {"total": s, "phases": {...}}` at the step's end. End of stdin ends the process at once (nothing
is saved). Phases are timed by wrapping the module-level functions TRL's loop calls; `update` is the rest.
This file imports only TRL, transformers and torch: cagsr is not installed in these venvs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch

MARK = "@@trl-peer "
PAD = "<|endoftext|>"  # SmolLM2's pad is its end-of-turn token, which the chat template uses: TRL would mask it
SAMPLING = {"temperature": 0.8, "top_k": 50, "top_p": 0.95}


def emit(obj: dict) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


class Phases:
    """Wall-clock seconds per phase of the current step; only the outermost timed call counts."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.depth = 0
        self.start = 0.0
        self.tokens = lambda: None  # mean response tokens of the step (the trainer's own count where it has one)

    def wrap(self, fn, phase_of):
        """fn, timed into the phase `phase_of(*args)` names (None: not timed)."""

        def timed(*args, **kwargs):
            phase = phase_of(*args) if self.depth == 0 else None
            if phase is None:
                return fn(*args, **kwargs)
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

        return timed

    def begin(self) -> None:
        self.seconds, self.start = {}, time.perf_counter()

    def result(self) -> dict:
        total = time.perf_counter() - self.start
        phases = dict(self.seconds)
        phases["update"] = max(0.0, total - sum(phases.values()))
        return {"total": total, "phases": phases, "tokens": self.tokens()}


def gate_callback(phases: Phases):
    """A TrainerCallback that hands control to the parent: ready at train begin, a result at each step's end."""
    from transformers import TrainerCallback

    def wait_for_go() -> None:
        line = sys.stdin.readline()
        if line.strip() != "go":  # end of input: the parent is done; skip TRL's end-of-training work
            sys.stdout.flush()
            os._exit(0)
        phases.begin()

    class Gate(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            emit({"ready": True})
            wait_for_go()

        def on_step_end(self, args, state, control, **kwargs):
            emit(phases.result())
            wait_for_go()

    return Gate()


def load_policy(folder: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    tokenizer.pad_token = PAD
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def scalar_model(folder: str, pad_id: int):
    """A sequence-classification model with one label from the policy's own folder (random head): TRL's
    PPO needs its value and reward models as modules with a backbone and a `score` head."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = pad_id
    return model


def common_args(args, out: str) -> dict:
    """TrainingArguments shared by both trainers: fp32 on the CPU, nothing saved, logged or evaluated."""
    return {"output_dir": out, "learning_rate": 1e-5, "seed": args.seed, "bf16": False, "fp16": False,
            "gradient_checkpointing": False, "use_cpu": True, "report_to": "none", "save_strategy": "no",
            "logging_steps": 10_000, "disable_tqdm": True, "dataloader_num_workers": 0,
            "gradient_accumulation_steps": 1}  # fmt: skip


def run_ppo(args, prompts: list[str], out: str) -> None:
    """TRL 1.12 `trl.experimental.ppo`: policy + value model, reference, reward model; one epoch, one minibatch."""
    import trl.experimental.ppo.ppo_trainer as ppo_module
    from datasets import Dataset
    from torch.utils.data import DataLoader
    from transformers import GenerationConfig
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    policy, tokenizer = load_policy(args.model)
    ref, _ = load_policy(args.model)
    value = scalar_model(args.model, tokenizer.pad_token_id)
    reward = scalar_model(args.model, tokenizer.pad_token_id)  # the cheap reward: one forward, random head
    ids = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                         tokenize=True)["input_ids"] for p in prompts]  # fmt: skip
    data = Dataset.from_dict({"input_ids": ids})  # steps x n prompts: one pass over them, n per step
    n = args.batch
    config = PPOConfig(**common_args(args, out), per_device_train_batch_size=n, num_mini_batches=1,
                       num_ppo_epochs=1, local_rollout_forward_batch_size=n, total_episodes=n * args.steps,
                       response_length=args.new_tokens, temperature=SAMPLING["temperature"], kl_coef=0.05,
                       kl_estimator="k3", stop_token="eos", num_sample_generations=0)  # fmt: skip
    # TRL's PPO builds its rollout config in train() with top-k 0 and top-p 1.0 fixed: replace it.
    ppo_module.GenerationConfig = lambda **kw: GenerationConfig(**(kw | SAMPLING))
    phases = Phases()
    ppo_module.batch_generation = counted(phases, phases.wrap(ppo_module.batch_generation, rollout_phase),
                                          tokenizer.eos_token_id)
    ppo_module.forward = phases.wrap(ppo_module.forward, lambda model, *a: "reference" if model is ref else None)
    ppo_module.get_reward = phases.wrap(ppo_module.get_reward,
                                        lambda model, *a: "value" if model is value else "reward")
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy, ref_model=ref, reward_model=reward,
                         value_model=value, train_dataset=data, eval_dataset=data,
                         callbacks=[gate_callback(phases)])  # fmt: skip
    # TRL shuffles its prompts; in order, step s reads the prompts every other system reads at step s.
    trainer.dataloader = DataLoader(data, batch_size=n, shuffle=False, collate_fn=trainer.data_collator,
                                    drop_last=True)  # fmt: skip
    trainer.train()


def rollout_phase(model, queries, batch, pad_id, generation_config) -> str:
    """PPO's rollout phase; logs the sampling it really uses (once), since it is patched in."""
    if not getattr(rollout_phase, "logged", False):
        rollout_phase.logged = True
        g = generation_config
        print(f"trl-peer ppo sampling: temperature {g.temperature:.3f}, top_k {g.top_k}, top_p {g.top_p}, "
              f"max_new_tokens {g.max_new_tokens}, batch {queries.shape}", file=sys.stderr, flush=True)
    return "rollout"


def counted(phases: Phases, generation, eos: int):
    """PPO's batch_generation, also counting response tokens up to the first end-of-turn (what TRL scores)."""

    def run(model, queries, *rest):
        out = generation(model, queries, *rest)
        ends = out[0][:, queries.shape[1]:] == eos
        lengths = torch.where(ends.any(1), ends.int().argmax(1) + 1, ends.shape[1]).float()
        phases.tokens = lambda: float(lengths.mean())
        return out

    return run


def length_reward(completions, **kwargs) -> list[float]:
    """The cheap reward: longer answers score higher, capped (no model pass)."""
    return [min(len(c[-1]["content"] if isinstance(c, list) else c), 200) / 200 for c in completions]


def run_grpo(args, prompts: list[str], out: str) -> None:
    """TRL GRPO: n/2 prompts x 2 generations per step (the first half of each step's n), beta 0.05 (so a
    reference model), one pass over the batch."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    policy, tokenizer = load_policy(args.model)
    half = max(1, args.batch // 2)
    steps = [prompts[i: i + half] for i in range(0, len(prompts), args.batch)]
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for step in steps for p in step]})
    config = GRPOConfig(**common_args(args, out), per_device_train_batch_size=2 * half, num_generations=2,
                        max_completion_length=args.new_tokens, beta=0.05, num_iterations=1, steps_per_generation=1,
                        max_steps=args.steps, shuffle_dataset=False, **SAMPLING)  # fmt: skip
    trainer = GRPOTrainer(model=policy, reward_funcs=length_reward, args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[])  # fmt: skip
    g = trainer.generation_config
    print(f"trl-peer grpo sampling: temperature {g.temperature}, top_k {g.top_k}, top_p {g.top_p}, "
          f"max_new_tokens {g.max_new_tokens}", file=sys.stderr, flush=True)
    phases = Phases()
    phases.tokens = lambda: (trainer._metrics["train"].get("completions/mean_length") or [None])[-1]
    instrument_grpo(trainer, phases)
    trainer.add_callback(gate_callback(phases))
    trainer.train()


def instrument_grpo(trainer, phases: Phases) -> None:
    """Time GRPO's rollout and reference passes on the trainer instance (the method names of TRL 1.16)."""
    trainer._generate = phases.wrap(trainer._generate, lambda *a: "rollout")
    logps = trainer._get_per_token_logps_and_entropies
    ref = getattr(trainer, "ref_model", None)
    trainer._get_per_token_logps_and_entropies = phases.wrap(
        logps, lambda model, *a: "reference" if ref is not None and model is ref else None
    )


def exit_with_parent() -> None:
    """A watchdog thread: a killed benchmark leaves no trainer behind (stdin only closes at a step's end)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=["ppo", "grpo"], required=True)
    parser.add_argument("--model", required=True, help="policy folder (a copy of cagsr's converted SmolLM2)")
    parser.add_argument("--prompts", required=True, help="JSON file: the user-turn texts of every step, in order")
    parser.add_argument("--batch", type=int, default=8, help="prompts per step (PPO; GRPO takes half of them)")
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--steps", type=int, default=4, help="RL steps the trainer is built for")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    exit_with_parent()
    torch.set_num_threads(args.threads)
    with open(args.prompts, encoding="utf-8") as f:
        prompts = json.load(f)
    if len(prompts) < args.batch * args.steps:  # TRL's PPO loader drops short batches and would spin forever
        emit({"error": f"{len(prompts)} prompts for {args.steps} steps of {args.batch}"})
        sys.exit(1)
    try:
        with tempfile.TemporaryDirectory(prefix=f"trl-peer-{args.kind}-") as out:
            (run_ppo if args.kind == "ppo" else run_grpo)(args, prompts, out)
    except Exception as err:  # noqa: BLE001 - the parent reports it with the log's path
        import traceback

        traceback.print_exc()
        emit({"error": f"{type(err).__name__}: {err}"})
        sys.exit(1)


if __name__ == "__main__":
    main()
