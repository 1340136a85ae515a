"""A corpus of bad inputs to `cagsr train`: each gives one line naming the file, line or key, exit code 2,
no traceback, and no run folder.

The corpus runs in-process through cagsr.cli.main (the same code path as the console script; an
uncaught exception would fail the test instead of printing a traceback); a few cases also run as
real subprocesses to check what a user sees on the terminal.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bad_input_cases import (
    CONTAINERS,
    ENCODING,
    GOOD,
    MALFORMED,
    MATH,
    MODEL_FIT,
    RUN_FOLDERS,
    SHAPES,
    Case,
    dialogue,
    line,
)

from cagsr.cli.main import main

DATA = [
    Case("invalid_json", "data.jsonl:1: invalid JSON", data='{"turns": [\n'),
    Case("not_an_object", "data.jsonl:1: expected a JSON object, got list", data="[1, 2]\n"),
    Case("turns_not_a_list", "data.jsonl:1: 'turns' must be a list, got str", data=line({"turns": "hello"})),
    Case("turn_not_an_object", "data.jsonl:1: turn 1 must be an object", data=line({"turns": ["hello"]})),
    Case(
        "unknown_role",
        "data.jsonl:1: turn 1 has role 'robot'",
        data=dialogue(("robot", "hi"), ("agent", "yo")),
    ),
    Case(
        "missing_text",
        "data.jsonl:1: turn 2 has no text",
        data=line({"turns": [{"role": "user", "text": "hi"}, {"role": "agent"}]}),
    ),
    Case(
        "text_wrong_type",
        "data.jsonl:1: turn 1 text must be text, got int",
        data=line({"turns": [{"role": "user", "text": 42}, {"role": "agent", "text": "ok"}]}),
    ),
    Case("empty_text", "data.jsonl:1: turn 2 text is empty", data=dialogue(("user", "hi"), ("agent", "   "))),
    Case("empty_dialogue", "data.jsonl:1: dialogue has no turns", data=line({"turns": []})),
    Case(
        "one_sided_user",
        "data.jsonl:1: dialogue is one-sided (only user turns)",
        data=dialogue(("user", "hello?"), ("user", "anyone?")),
    ),
    Case(
        "one_sided_agent",
        "data.jsonl:1: dialogue is one-sided (only agent turns)",
        data=dialogue(("agent", "Welcome.")),
    ),
    Case("missing_answer", "data.jsonl:1: missing answer", data=line({"question": "2 + 3?", "steps": ["5"]})),
    Case(
        "answer_wrong_type",
        "data.jsonl:1: 'answer' must be a number or text, got list",
        data=line(MATH | {"answer": [5]}),
    ),
    Case(
        "steps_wrong_type", "data.jsonl:1: 'steps' must be a list of text", data=line(MATH | {"steps": "5"})
    ),
    Case("empty_question", "data.jsonl:1: 'question' is empty", data=line(MATH | {"question": " "})),
    Case("neither_kind", "data.jsonl:1: neither a dialogue", data=line({"prompt": "hi"})),
    Case(
        "non_utf8",
        "data.jsonl:2: not UTF-8 text (byte 0xff",
        data=line(GOOD).encode() + b'\xff\xfe{"turns": 1}\n',
    ),
    Case(
        "huge_line",
        "data.jsonl:1: line is",
        data=line({"turns": [{"role": "user", "text": "x" * 1_100_000}]}),
    ),
    Case("empty_file", "data.jsonl: no records", data=""),
    Case("blank_lines_only", "data.jsonl: no records", data="\n   \n\n"),
    Case("bad_third_line", "data.jsonl:3: invalid JSON", data=line(GOOD) + line(GOOD) + "{oops}\n"),
    Case("mixed_kinds", "data.jsonl:2: missing field 'turns'", data=line(GOOD) + line(MATH)),
    Case(
        "kind_flag_mismatch",
        "data.jsonl:1: missing field 'question'",
        data=line(GOOD),
        args=["--data.kind", "math"],
    ),
    Case("missing_file", "{tmp}/absent.jsonl: file not found", args=["--data", "{tmp}/absent.jsonl"]),
    Case("folder_as_data", "{tmp}: is a folder", args=["--data", "{tmp}"]),
]

CONFIGS = [
    Case("unknown_key", "unknown config key 'ppo.learning_rate'", config="ppo: {learning_rate: 0.1}\n"),
    Case("unknown_section", "unknown config key 'trainer'", config="trainer: {steps: 3}\n"),
    Case("int_wrong_type", "ppo.epochs: expected an integer, got 'three'", config="ppo: {epochs: three}\n"),
    Case(
        "bool_wrong_type",
        "ppo.whiten_advantages: expected true or false",
        config="ppo: {whiten_advantages: maybe}\n",
    ),
    Case("list_wrong_type", "salience.keywords: expected text", config="salience: {keywords: [[1]]}\n"),
    Case("negative_lr", "optimizer.lr: must be > 0.0, got -0.001", config="optimizer: {lr: -0.001}\n"),
    Case("nan_lr", "optimizer.lr: must not be NaN", config="optimizer: {lr: .nan}\n"),
    Case(
        "floor_above_log_n",
        "reward.tau0: entropy floor 6.0 is above log(rollout.max_context) = 5.55",
        config="model: {name: tiny-llama}\nrollout: {max_context: 256}\nreward: {tau0: 6.0}\n",
    ),
    Case("clip_out_of_range", "ppo.clip_eps: must be <= 1.0", config="ppo: {clip_eps: 1.5}\n"),
    Case("negative_grad_clip", "optimizer.grad_clip: must be > 0.0", config="optimizer: {grad_clip: -1}\n"),
    Case("bad_choice", "ppo.critic: must be one of auto, separate, head, none", config="ppo: {critic: shared}\n"),
    Case("val_fraction_range", "data.val_fraction: must be <= 0.9", config="data: {val_fraction: 0.95}\n"),
    Case("zero_episodes", "rollout.episodes: must be >= 1", config="rollout: {episodes: 0}\n"),
    Case(
        "nested_out_of_range",
        "rollout.sampling.top_p: must be > 0.0",
        config="rollout: {sampling: {top_p: 0}}\n",
    ),
    Case("tiny_context", "rollout.max_context: must be >= 32", config="rollout: {max_context: 16}\n"),
    Case("invalid_yaml", "config.yaml:2: not valid YAML", config="ppo: {epochs: 2}\nrun: seed: 3\n"),
    Case("yaml_not_a_mapping", "config.yaml: expected a mapping of config sections", config="- a\n- b\n"),
    Case("section_not_a_mapping", "ppo: expected a mapping, got 3", config="ppo: 3\n"),
    Case("unknown_reward", "reward.kind: unknown reward 'nonsense'", config="reward: {kind: nonsense}\n"),
    Case(
        "config_not_found", "{tmp}/absent.yaml: config file not found", args=["--config", "{tmp}/absent.yaml"]
    ),
    Case("unknown_model", "no-such-model: not a preset", args=["--model", "no-such-model"]),
]

ARGS = [
    Case("unknown_flag", "unrecognized arguments: --ppo.lrr", args=["--ppo.lrr", "1"]),
    Case("flag_without_value", "argument --optimizer.lr: expected one argument", args=["--optimizer.lr"]),
    Case(
        "cli_int_wrong_type", "ppo.iterations: expected an integer, got 'ten'", args=["--iterations", "ten"]
    ),
    Case("cli_negative_lr", "optimizer.lr: must be > 0.0", args=["--optimizer.lr", "-1"]),
    Case("resume_not_a_run", "{tmp}: not a cagsr run folder (no config.yaml)", args=["--resume", "{tmp}"]),
    Case(
        "output_below_a_file",
        "{tmp}/data.jsonl/run: run folder is not writable",
        data=line(GOOD),
        args=["--output-dir", "{tmp}/data.jsonl/run"],
    ),
]

CORPUS = DATA + CONFIGS + ARGS + ENCODING + MALFORMED + SHAPES + CONTAINERS + MODEL_FIT + RUN_FOLDERS


def argv_for(case: Case, tmp: Path) -> list[str]:
    argv = ["train", "--output-dir", str(tmp / "run"), "--run.progress", "false", "--run.threads", "1"]
    if case.setup is not None:
        case.setup(tmp)
    if case.data is not None:
        path = tmp / case.data_name
        path.write_bytes(case.data if isinstance(case.data, bytes) else case.data.encode())
        argv += ["--data", str(path)]
    if case.config is not None:
        (tmp / "config.yaml").write_text(case.config)
        argv += ["--config", str(tmp / "config.yaml")]
    else:
        argv += ["--config", "tiny"]
    return argv + [a.replace("{tmp}", str(tmp)) for a in case.args]


def test_corpus_is_large_and_names_are_unique():
    assert len(CORPUS) >= 100
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_bad_input_gives_one_clear_line(case, tmp_path, capsys):
    argv = argv_for(case, tmp_path)
    before = snapshot(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cagsr train: error: ")
    assert case.expect.replace("{tmp}", str(tmp_path)) in lines[0]
    assert "Traceback" not in err and out == ""
    if case.keeps_run:
        assert before and snapshot(tmp_path / "run") == before, "an earlier run must be left as it was"
    else:
        assert not (tmp_path / "run").exists(), "no run folder may be left behind"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} \
        if folder.exists() else {}


def test_resume_without_checkpoints_writes_nothing(tmp_path, capsys):
    """A run folder whose checkpoints are all missing: named, exit 2, the folder is left as it was."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(
        f"model: {{name: tiny-llama}}\nrun: {{output_dir: {run}, progress: false}}\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", str(run)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip() == f"cagsr train: error: {run}: no usable checkpoint to resume from"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


SUBPROCESS_CASES = ["non_utf8", "floor_above_log_n", "unknown_flag", "deep_array", "capture_layers_3"]


def test_a_real_terminal_sees_one_line(tmp_path):
    """The same contract through `python -m cagsr` in a fresh process (warnings and all)."""
    cases = [c for c in CORPUS if c.name in SUBPROCESS_CASES]
    procs = []
    for case in cases:
        folder = tmp_path / case.name
        folder.mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "cagsr", *argv_for(case, folder)],
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=os.environ.copy(),
            )
        )
    for case, proc in zip(cases, procs, strict=True):
        out, err = proc.communicate(timeout=300)
        folder = tmp_path / case.name
        assert proc.returncode == 2, err
        assert err.strip().splitlines() == [err.strip()], err
        assert case.expect.replace("{tmp}", str(folder)) in err and "Traceback" not in err
        assert out == "" and not (folder / "run").exists()


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cagsr.utils.run import lock_run_dir
    lock_run_dir(Path(sys.argv[1]))
    print("locked", flush=True)
    time.sleep(300)
""")


def test_a_run_into_a_folder_another_process_writes_fails_at_once(tmp_path):
    """Concurrent lock, through a real terminal: one line, exit 2, nothing written into the folder."""
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = subprocess.run([sys.executable, "-m", "cagsr", "train", "--config", "tiny", "--output-dir", str(folder)],
                             capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == (f"cagsr train: error: {folder}: another cagsr process is writing this run "
                                  "folder; wait for it to finish or choose another --output-dir")
    assert list(folder.iterdir()) == []


def test_two_runs_started_together_never_share_a_folder(tmp_path):
    """Two `cagsr train` into one new folder at once: one run owns it, the other fails with one line."""
    folder = tmp_path / "run"
    argv = [sys.executable, "-m", "cagsr", "train", "--config", "tiny", "--ppo.iterations", "1", "--ppo.epochs", "1",
            "--rollout.episodes", "2", "--rollout.turns", "1", "--heldout.episodes", "1", "--run.threads", "1",
            "--output-dir", str(folder)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err[-500:] for _, _, err in results]
    (err,) = [err for code, _, err in results if code == 2]
    assert len(err.strip().splitlines()) == 1 and ("another cagsr process" in err or "already holds a run" in err)
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 1  # one run's metrics, not two
