"""A peer row: one RL step of TRL on the same single-turn work as cagsr's single-turn PPO step, as a ratio.

    .venv/bin/python benchmarks/trl_peer.py --threads 2 --output runs/bench-trl-peer.md   # quiet machine
    .venv/bin/python benchmarks/trl_peer.py --quick --threads 1                           # smoke run

The work (../shared/docs/trl-peer.md): SmolLM2-135M-Instruct in fp32, 8 chat prompts (the first user turns
of STAR dialogues, ~42 tokens with the chat template), 48 new tokens sampled at temperature 0.8, top-k 50,
top-p 0.95, KL coefficient 0.05, lr 1e-5, one epoch over the whole batch as one minibatch. Rows:

- cagsr `train` (dialogue-star preset, 1 turn, 8 episodes), value head and separate critic, timed by
  `Trainer.iteration()`'s own phases;
- TRL 1.12.0 `trl.experimental.ppo` (the last release that ships it) with separate value and reward models;
- TRL 1.16.0 GRPO (4 prompts x 2 generations, beta 0.05), a cheap length reward;
- cagsr `train` with the grpo estimator, the same 4 prompts x 2 episodes (rollout.group_size 2), no critic,
  and TRL's length reward (benchmarks/trl_peer_reward.py): the like-for-like GRPO pair.

Each TRL release lives in a virtualenv of its own (.venv-trl-ppo, .venv-trl-grpo), built here on first use
(torch pinned first: an unpinned torch pulls a multi-GB CUDA build), and runs in a worker process
(benchmarks/trl_peer_worker.py) that waits for a "go" between steps, so all rows run interleaved in one run:
round r runs `--steps-per-round` steps of every system, then round r + 1 runs them in the reverse order.
Reported: the median of each system's steps after its first (`--quick`: of every step). Step s of every
system reads the same prompts (cagsr's next records). Time nothing while another CPU-heavy job runs: the
load average at start and end is printed under the table. Memory: all four trainers are alive at once; the
--quick run peaked at about 20 GB resident in all (this process with both cagsr trainers 10.9 GB, TRL PPO
5.8 GB, GRPO 3.2 GB; shared libraries counted in each), and the full run needs more: on a smaller machine
split the rows over two runs with --systems (the interleaving then holds only within each run).
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "trl_peer_worker.py"
STAR = ROOT.parent / "shared" / "data" / "star_dialogues.jsonl"
VENVS = {"ppo": (".venv-trl-ppo", "1.12.0"), "grpo": (".venv-trl-grpo", "1.16.0")}
TORCH = "2.13.0"
MARK = "@@trl-peer "  # prefix of the worker's result lines: TRL and transformers also print to stdout


# -- the TRL virtualenvs ------------------------------------------------------------------------------------
def _pins() -> list[str]:
    """transformers and friends at the versions of the running .venv, so both sides use the same stack."""
    pins = []
    for name in ("transformers", "accelerate", "datasets", "peft"):
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _has_trl(venv: Path, version: str) -> bool:
    python = venv / "bin" / "python"
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import trl, torch; print(trl.__version__, torch.__version__)"],
                           capture_output=True, text=True)  # fmt: skip
    return probe.returncode == 0 and probe.stdout.split()[:1] == [version]


def ensure_venv(kind: str) -> tuple[Path, float]:
    """The venv of `kind`, built if missing or broken; seconds spent building it (0.0: it was there)."""
    name, version = VENVS[kind]
    venv = ROOT / name
    if _has_trl(venv, version):
        return venv, 0.0
    start, log = time.perf_counter(), ROOT / "runs" / f"{name.lstrip('.')}-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off"]
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             pip + [f"torch=={TORCH}"],  # first and pinned: the CPU wheel on local disk, not the CUDA build
             pip + _pins(),
             pip + [f"trl=={version}"]]  # fmt: skip
    print(f"building {name} (trl {version}); pip output in {log}", file=sys.stderr, flush=True)
    with log.open("w") as out:
        for cmd in steps:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode:
                sys.exit(f"trl_peer: `{' '.join(cmd)}` failed; see {log}")
    if not _has_trl(venv, version):
        sys.exit(f"trl_peer: {name} was built but does not import trl {version}; see {log}")
    return venv, time.perf_counter() - start


# -- the shared work ----------------------------------------------------------------------------------------
def star_prompts(n: int) -> list[str]:
    """The first user turns of the first n STAR dialogues that open with the user."""
    texts = []
    with STAR.open(encoding="utf-8") as f:
        for line in f:
            turns = json.loads(line)["turns"]
            if turns and turns[0]["role"] == "user":
                texts.append(turns[0]["text"])
            if len(texts) == n:
                break
    return texts


def export_model(folder: Path) -> Path:
    """A copy of cagsr's converted SmolLM2 folder for TRL, so the TRL venvs never touch $CAGSR_HOME (each
    worker sets its own pad token); the source folder is returned."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cagsr.models.smollm2 import ensure_converted

    source = ensure_converted()  # what load_model("smollm2-135m") reads: the GGUF, converted once
    AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return source


def prompt_tokens(folder: Path, texts: list[str]) -> float:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    return statistics.fmean(len(tok.apply_chat_template([{"role": "user", "content": t}], tokenize=True,
                                                        add_generation_prompt=True)["input_ids"]) for t in texts)


# -- the systems ------------------------------------------------------------------------------------------
class CagsrStep:
    """cagsr's single-turn RL step: `Trainer.iteration()` of the `train` machinery, by its own phases."""

    def __init__(self, critic: str, args, out: str, machine):
        from cagsr.config import load_job
        from cagsr.ppo.config import TrainJob
        from cagsr.ppo.trainer import Trainer

        self.name = f"cagsr `train` ({'value head' if critic == 'head' else 'separate critic'}), 1 turn, " \
                    f"{args.prompts} episodes"  # fmt: skip
        estimator = {"ppo.critic": critic}
        if critic == "grpo":  # TRL GRPO's work: prompts / 2 records x 2 episodes, its length reward, no critic
            self.name = f"cagsr `train` GRPO ({args.prompts // 2} prompts x 2 episodes, no critic), 1 turn"
            estimator = {"ppo.advantage": "grpo", "ppo.critic": "none", "rollout.group_size": 2,
                         "reward.kind": str(Path(__file__).with_name("trl_peer_reward.py")) + ":length_chars"}
        overrides = {"run.output_dir": out, "run.progress": False, "run.seed": args.seed,
                     "run.threads": args.threads, "data.path": str(STAR), "rollout.episodes": args.prompts,
                     "rollout.turns": 1, "rollout.sampling.max_new_tokens": args.new_tokens,
                     "rollout.sampling.temperature": 0.8, "rollout.sampling.top_k": 50,
                     "rollout.sampling.top_p": 0.95, "ppo.iterations": args.steps, "ppo.epochs": 1,
                     "ppo.minibatch_episodes": args.prompts, "optimizer.lr": 1e-5, "ppo.kl_coef": 0.05,
                     "ppo.target_kl": None, **estimator}  # fmt: skip
        self.trainer = Trainer(load_job(TrainJob, "dialogue-star", overrides))
        self.skip_records = args.prompts - args.prompts // 2 if critic == "grpo" else 0
        self.machine = machine  # matmul rates for the floor

    def step(self) -> dict:
        from cagsr.bench.estimators import timed_iteration

        metrics = timed_iteration(self.trainer, self.machine)  # Trainer.iteration() with its floor
        total = metrics["total"]
        if self.skip_records:  # TRL GRPO's step s reads the first half of the s-th batch of prompts: so do we
            self.trainer.state.position += self.skip_records
        phases = {k.removeprefix("time/"): float(v) for k, v in metrics.items() if k.startswith("time/")}
        return {"total": total, "phases": phases, "tokens": metrics.get("policy/response_len"),
                "floor": metrics["floor"]}

    def close(self) -> None:
        self.trainer.logger.close()  # its TensorBoard writer holds files in the temporary run folder


class TrlStep:
    """A TRL trainer in its own venv and process; one `go` line = one RL step, answered by a result line."""

    def __init__(self, kind: str, venv: Path, model: Path, prompts: Path, args, log: Path):
        self.name = {"ppo": f"TRL {VENVS['ppo'][1]} `trl.experimental.ppo` (separate value and reward models)",
                     "grpo": f"TRL {VENVS['grpo'][1]} GRPO ({max(1, args.prompts // 2)} prompts x 2 generations, "
                             "beta 0.05)"}[kind]  # fmt: skip
        cmd = [str(venv / "bin" / "python"), str(WORKER), "--kind", kind, "--model", str(model),
               "--prompts", str(prompts), "--batch", str(args.prompts), "--new-tokens", str(args.new_tokens),
               "--steps", str(args.steps), "--threads", str(args.threads), "--seed", str(args.seed)]  # fmt: skip
        env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false",
                            "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true", "PYTHONUNBUFFERED": "1"}  # fmt: skip
        self.log = log.open("a")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env, cwd=log.parent)  # fmt: skip
        self._read()  # "ready": the trainer is built, so its set-up is not a step's

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                result = json.loads(line[len(MARK):])
                if "error" in result:
                    raise RuntimeError(f"{self.name}: {result['error']} (log: {self.log.name})")
                return result
            self.log.write(line)
        raise RuntimeError(f"{self.name}: worker exited with {self.proc.wait()} (log: {self.log.name})")

    def step(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# -- the run and its table ---------------------------------------------------------------------------------
def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_rounds(systems: list, rounds: int, per_round: int) -> dict[str, list[dict]]:
    """Round r: `per_round` steps of every system in turn, then round r + 1 in the reverse order, so slow
    drifts of a shared machine and the position in a round hit all rows alike."""
    results: dict[str, list[dict]] = {s.name: [] for s in systems}
    for r in range(rounds):
        for system in systems if r % 2 == 0 else systems[::-1]:
            for _ in range(per_round):
                results[system.name].append(system.step())
                step = len(results[system.name])
                print(f"round {r + 1}, step {step}: {system.name}: {results[system.name][-1]['total']:.2f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    return results


def summarise(steps: list[dict], skip: int) -> dict:
    """Median seconds of the steps after the first `skip` (warm-up), and the median of each phase."""
    kept = steps[skip:] or steps
    phases = {p: statistics.median(s["phases"].get(p, 0.0) for s in kept) for p in kept[0]["phases"]}
    tokens = [s["tokens"] for s in kept if s.get("tokens") is not None]
    floors = [s["floor"] for s in kept if s.get("floor") is not None]
    return {"total": statistics.median(s["total"] for s in kept), "phases": phases, "samples": len(kept),
            "tokens": statistics.fmean(tokens) if tokens else None,
            "floor": statistics.median(floors) if floors else None}  # fmt: skip


def render(rows: dict[str, dict], info: dict[str, str], work: str, steps_note: str) -> str:
    """The table: every row's median step, its phases, and its ratio to each cagsr row that ran."""
    bases = {("grpo" if "GRPO" in n else "head" if "value head" in n else "critic"): r["total"]
             for n, r in rows.items() if n.startswith("cagsr")}  # fmt: skip
    lines = ["## TRL as a peer: one RL step on the same single-turn work", "", f"Work: {work}.", "",
             steps_note, "",
             "| system | s/step (median) | phases (s) | response tokens | x floor | "
             + " | ".join(f"x cagsr ({b})" for b in bases) + " |",
             "|---|---:|---|---:|---:|" + "---:|" * len(bases)]  # fmt: skip
    for name, row in rows.items():
        phases = ", ".join(f"{p} {v:.2f}" for p, v in row["phases"].items() if v >= 0.005)
        ratios = " | ".join(f"{row['total'] / base:.2f}" for base in bases.values())
        tokens = "n/a" if row["tokens"] is None else f"{row['tokens']:.1f}"
        floor = "n/a" if row.get("floor") is None else f"{row['total'] / row['floor']:.2f}"
        lines.append(f"| {name} | {row['total']:.2f} | {phases} | {tokens} | {floor} | {ratios} |")
    lines += ["", "Response tokens: the mean generated per response (up to its end-of-turn token) over the kept "
              "steps; every system may stop early at end-of-turn, so compare per step, not per token. x floor: a "
              "cagsr step's seconds over its floor (the rollout per turn on top of the cached prompt, and the "
              "FLOPs of its teacher-forced passes at the matmul rates measured in this run; cagsr.bench.packing).",
              "", "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), ""]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=8, help="episodes (cagsr, TRL PPO) = GRPO prompts x 2")
    parser.add_argument("--new-tokens", type=int, default=48, help="new tokens per response")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds over all systems")
    parser.add_argument("--steps-per-round", type=int, default=2, help="consecutive steps of a system per round")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", nargs="+", default=["head", "separate", "cagsr-grpo", "ppo", "grpo"],
                        choices=["head", "separate", "cagsr-grpo", "ppo", "grpo"],
                        help="rows to run (cagsr: value head, separate critic, GRPO; TRL: ppo, grpo)")
    parser.add_argument("--setup-only", action="store_true", help="build the TRL venvs and stop")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 prompts, 8 new tokens, 1 round")
    parser.add_argument("--output", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.new_tokens, args.rounds = 2, 8, 1
    args.steps = args.rounds * args.steps_per_round
    return args


def cagsr_prompts(trainer, count: int) -> list[str]:
    """The first user turns of the records cagsr's trainer will read next (a copy of its state), so TRL
    trains on the same prompts: step s of every system reads the s-th batch of them."""
    records = copy.deepcopy(trainer.state).next_records(trainer.train_records, count)
    return [next(u.text for u in r.turns if u.role == "user") for r in records]


def build_systems(args, stack: ExitStack, tmp: Path, venvs: dict) -> list:
    """cagsr's trainers first (their prompts are TRL's), then a worker process per TRL venv."""
    from cagsr.bench.machine import measure_machine

    systems, machine = [], measure_machine("cpu")
    for kind in (k for k in args.systems if k not in VENVS):
        out = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"trl-peer-cagsr-{kind}-"))
        systems.append(CagsrStep(kind.removeprefix("cagsr-"), args, out, machine))
        stack.callback(systems[-1].close)
    n = args.prompts * args.steps
    texts = cagsr_prompts(systems[0].trainer, n) if systems else star_prompts(n)
    (tmp / "prompts.json").write_text(json.dumps(texts), encoding="utf-8")
    model = tmp / "smollm2-135m"
    source = export_model(model)
    args.work = (f"SmolLM2-135M-Instruct fp32 (a copy of {source}), {args.prompts} prompts a step: STAR "
                 f"first user turns, ~{prompt_tokens(model, texts):.0f} tokens with the chat template; "
                 f"{args.new_tokens} new tokens at temperature 0.8, top-k 50, top-p 0.95; KL coef 0.05, lr 1e-5, "
                 "one epoch, one minibatch")
    for kind in (k for k in args.systems if k in VENVS):
        log = ROOT / "runs" / f"trl-peer-{kind}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        systems.append(TrlStep(kind, venvs[kind], model, tmp / "prompts.json", args, log))
        stack.callback(systems[-1].close)
    return systems


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    built = {kind: ensure_venv(kind) for kind in VENVS if kind in args.systems}
    for kind, (venv, seconds) in built.items():
        note = f"built in {seconds:.0f} s" if seconds else "already there"
        print(f"{venv.name}: trl {VENVS[kind][1]}, {note}", file=sys.stderr)
    if args.setup_only:
        return
    start = load_average()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trl-peer-")))
        systems = build_systems(args, stack, tmp, {k: v for k, (v, _) in built.items()})
        results = run_rounds(systems, args.rounds, args.steps_per_round)
    skip = 0 if args.quick else 1  # the first step of each system pays one-off costs (oneDNN packing, caches)
    rows = {name: summarise(steps, skip) for name, steps in results.items()}
    info = describe_machine_info(args.threads) | {"load_average": f"{start} at start, {load_average()} at the end"}
    kept = f"steps {skip + 1}-{args.steps}" if args.steps > skip + 1 else f"step {args.steps}"
    note = (f"{args.rounds} alternating round(s) of {args.steps_per_round} step(s) per system; median of {kept}; "
            f"{args.threads} torch thread(s) per system.")
    report = render(rows, info, args.work, note)
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")


def describe_machine_info(threads: int) -> dict[str, str]:
    from cagsr.bench.machine import describe_machine

    info = describe_machine()
    info.pop("load_average", None)  # replaced by the start and end figures
    info["threads"] = str(threads)
    info["trl"] = ", ".join(f"{v} ({n})" for n, v in VENVS.values())
    return info


if __name__ == "__main__":
    main()
