"""A corpus of bad inputs to `cagsr train`: each gives one line naming the file, line or key, exit code 2,
no traceback, and no run folder.

The corpus runs in-process through cagsr.cli.main (the same code path as the console script; an
uncaught exception would fail the test instead of printing a traceback); a few cases also run as
real subprocesses to check what a user sees on the terminal.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cagsr.cli.main import main

GOOD = {
    "turns": [{"role": "user", "text": "Hi, I need a table for two."}, {"role": "agent", "text": "Sure."}]
}
MATH = {"question": "What is 2 + 3?", "steps": ["2 + 3 = 5"], "answer": "5"}


def line(obj) -> str:
    return json.dumps(obj) + "\n"


def dialogue(*turns) -> str:
    return line({"turns": [{"role": r, "text": t} for r, t in turns]})


@dataclass
class Case:
    name: str
    expect: str
    """Text the error line must contain ({tmp} is the case's folder)."""
    data: str | bytes | None = None
    """Contents of {tmp}/data.jsonl, passed with --data."""
    config: str | None = None
    """Contents of {tmp}/config.yaml, passed with --config (else the tiny preset)."""
    args: list[str] = field(default_factory=list)
    """Extra arguments ({tmp} is replaced)."""
    data_name: str = "data.jsonl"
    """File name the data is written under."""
    setup: Callable[[Path], None] | None = None
    """Prepares {tmp} before the run (a model folder, a Parquet file, an earlier run in {tmp}/run)."""
    keeps_run: bool = False
    """{tmp}/run exists beforehand (setup made it): it must be left exactly as it was."""


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
    Case("list_wrong_type", "reward.keywords: expected text", config="reward: {keywords: [[1]]}\n"),
    Case("negative_lr", "ppo.lr: must be > 0.0, got -0.001", config="ppo: {lr: -0.001}\n"),
    Case("nan_lr", "ppo.lr: must not be NaN", config="ppo: {lr: .nan}\n"),
    Case(
        "floor_above_log_n",
        "reward.tau0: entropy floor 6.0 is above log(rollout.max_context) = 5.55",
        config="model: {name: tiny-llama}\nrollout: {max_context: 256}\nreward: {tau0: 6.0}\n",
    ),
    Case("clip_out_of_range", "ppo.clip_eps: must be <= 1.0", config="ppo: {clip_eps: 1.5}\n"),
    Case("negative_grad_clip", "ppo.grad_clip: must be > 0.0", config="ppo: {grad_clip: -1}\n"),
    Case("bad_choice", "ppo.critic: must be one of separate, head", config="ppo: {critic: shared}\n"),
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
    Case("flag_without_value", "argument --ppo.lr: expected one argument", args=["--ppo.lr"]),
    Case(
        "cli_int_wrong_type", "ppo.iterations: expected an integer, got 'ten'", args=["--iterations", "ten"]
    ),
    Case("cli_negative_lr", "ppo.lr: must be > 0.0", args=["--ppo.lr", "-1"]),
    Case("resume_not_a_run", "{tmp}: not a cagsr run folder (no config.yaml)", args=["--resume", "{tmp}"]),
    Case(
        "output_below_a_file",
        "{tmp}/data.jsonl/run: run folder is not writable",
        data=line(GOOD),
        args=["--output-dir", "{tmp}/data.jsonl/run"],
    ),
]

SYSTEM = {"role": "system", "text": "You are a booking agent."}
DEEP = 100_000


def messages(*msgs) -> str:
    return line({"messages": [{"role": r, "content": c} for r, c in msgs]})


ENCODING = [
    Case("bom_then_invalid", "data.jsonl:1: invalid JSON", data=b"\xef\xbb\xbf{oops\n"),
    Case("bom_then_one_sided", "data.jsonl:1: dialogue is one-sided",
         data=b"\xef\xbb\xbf" + dialogue(("user", "hello?")).encode()),
    Case("bom_mid_file", "data.jsonl:2: invalid JSON (Unexpected UTF-8 BOM",
         data=line(GOOD).encode() + b"\xef\xbb\xbf" + line(GOOD).encode()),
    Case("utf16_bom", "data.jsonl:1: UTF-16 text (byte-order mark)", data=line(GOOD).encode("utf-16")),
    Case("crlf_invalid_line2", "data.jsonl:2: invalid JSON", data=line(GOOD).replace("\n", "\r\n") + "{bad\r\n"),
    Case("crlf_one_sided", "data.jsonl:1: dialogue is one-sided",
         data=dialogue(("agent", "Welcome.")).replace("\n", "\r\n")),
    Case("crlf_bom_missing_answer", "data.jsonl:1: missing answer",
         data=b"\xef\xbb\xbf" + line({"question": "2 + 3?"}).replace("\n", "\r\n").encode()),
]

MALFORMED = [
    Case("deep_array", "data.jsonl:1: invalid JSON (nested too deeply)", data="[" * DEEP + "\n"),
    Case("deep_object", "data.jsonl:1: invalid JSON (nested too deeply)", data='{"a":' * 50_000 + "\n"),
    Case("deep_inside_turns", "data.jsonl:2: invalid JSON (nested too deeply)",
         data=line(GOOD) + '{"turns": ' + "[" * DEEP + "\n"),
    Case("deep_but_closed", "data.jsonl:1: invalid JSON (nested too deeply)", data="[" * DEEP + "]" * DEEP + "\n"),
    Case("nan_literal", "data.jsonl:1: invalid JSON (NaN is not a JSON number)",
         data='{"question": "q?", "answer": NaN}\n'),
    Case("infinity_literal", "data.jsonl:1: invalid JSON (-Infinity is not a JSON number)",
         data='{"question": "q?", "answer": -Infinity}\n'),
    Case("huge_integer", "data.jsonl:1: invalid JSON (Exceeds the limit",
         data='{"question": "q?", "answer": ' + "9" * 5000 + "}\n"),
    Case("truncated_line", "data.jsonl:1: invalid JSON", data='{"turns": [{"role": "user", "te\n'),
    Case("trailing_garbage", "data.jsonl:1: invalid JSON (Extra data", data=line(GOOD).strip() + " extra\n"),
    Case("single_quotes", "data.jsonl:1: invalid JSON", data="{'turns': []}\n"),
    Case("lone_surrogate", "data.jsonl:1: turn 1 text has an unpaired surrogate (\\ud800)",
         data='{"turns": [{"role": "user", "text": "hi \\ud800"}, {"role": "agent", "text": "ok"}]}\n'),
    Case("control_character", "data.jsonl:1: invalid JSON (Invalid control character",
         data='{"turns": [{"role": "user", "text": "a\tb"}]}\n'),
]

SHAPES = [
    Case("system_mid_dialogue", "data.jsonl:1: turn 2 is a system message after the conversation started",
         data=dialogue(("user", "hi"), ("system", "be brief"), ("agent", "ok"))),
    Case("only_system", "data.jsonl:1: dialogue has only a system prompt", data=line({"turns": [SYSTEM]})),
    Case("system_and_user_only", "data.jsonl:1: dialogue is one-sided (only user turns)",
         data=line({"turns": [SYSTEM, {"role": "user", "text": "hi"}]})),
    Case("messages_not_a_list", "data.jsonl:1: 'messages' must be a list, got str", data=line({"messages": "hi"})),
    Case("message_tool_role", "data.jsonl:1: message 2 has role 'tool'",
         data=messages(("user", "hi"), ("tool", "{}"), ("assistant", "ok"))),
    Case("message_without_content", "data.jsonl:1: message 1 has no content",
         data=line({"messages": [{"role": "user", "text": "hi"}]})),
    Case("content_parts_without_text", "data.jsonl:1: message 1 content has no text parts",
         data=line({"messages": [{"role": "user", "content": [{"type": "image"}]}, {"role": "assistant",
                                                                                     "content": "ok"}]})),
    Case("messages_empty_content", "data.jsonl:1: message 2 content is empty",
         data=messages(("user", "hi"), ("assistant", " "))),
    Case("completion_bad_role", "data.jsonl:1: completion message 1 has role 'robot'",
         data=line({"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "robot", "content": "x"}]})),
    Case("prompt_not_a_list", "data.jsonl:1: 'prompt' must be a list, got int", data=line({"prompt": 3, "completion": "x"})),
    Case("mixed_shapes_then_math", "data.jsonl:2: missing field 'turns'", data=messages(("user", "a"), ("assistant", "b"))
         + line(MATH)),
]


def _write_parquet(tmp: Path, rows: list) -> None:
    import datasets

    datasets.disable_progress_bars()  # the setup's own output is not what the test reads
    datasets.Dataset.from_list(rows).to_parquet(str(tmp / "data.parquet"))


def _save_dataset(tmp: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    rows = datasets.Dataset.from_list([json.loads(messages(("user", "hi"), ("assistant", "ok")))])
    datasets.DatasetDict({"train": rows}).save_to_disk(str(tmp / "saved"))


CONTAINERS = [
    Case("parquet_garbage", "data.parquet: not a readable Parquet file", data="not parquet\n", data_name="data.parquet"),
    Case("parquet_bad_row", "data.parquet: row 2: dialogue is one-sided", args=["--data", "{tmp}/data.parquet"],
         setup=lambda tmp: _write_parquet(tmp, [json.loads(messages(("user", "a"), ("assistant", "b"))),
                                                json.loads(messages(("user", "a"), ("user", "b")))])),
    Case("saved_dataset_damaged", "saved: not a readable saved dataset", args=["--data", "{tmp}/saved"],
         setup=lambda tmp: (tmp / "saved").mkdir() or (tmp / "saved" / "dataset_info.json").write_text("{")),
    Case("saved_dataset_missing_split", "saved: no split 'validation' (splits: train)",
         args=["--data", "{tmp}/saved", "--data.split", "validation"], setup=_save_dataset),
    Case("missing_mapped_column", "saved: row 1: no column 'dialog'",
         args=["--data", "{tmp}/saved", "--data.columns", "messages=dialog"], setup=_save_dataset),
    Case("bad_column_mapping", "data.columns: expected OURS=THEIRS, got 'messages'",
         args=["--data.columns", "messages"]),
    Case("hub_folder_without_data", "could not load the dataset", args=["--data", "hf:{tmp}/nothing"],
         setup=lambda tmp: (tmp / "nothing").mkdir()),
]

_MODELS: dict[str, Path] = {}


def model_folder(tmp: Path, name: str, template: str | None) -> None:
    """tiny-llama saved with another chat template (None: none at all), copied into tmp/name."""
    if template not in _MODELS:
        from cagsr.models import load_model

        loaded = load_model("tiny-llama")
        loaded.tokenizer.chat_template = template
        folder = Path(tempfile.mkdtemp(prefix="cagsr-bad-model-"))
        loaded.model.save_pretrained(folder)
        loaded.tokenizer.save_pretrained(folder)
        _MODELS[template] = folder
    shutil.copytree(_MODELS[template], tmp / name)


DROPS_SYSTEM = ("{% for m in messages %}{% if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
REJECTS_SYSTEM = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
                  "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
WITH_SYSTEM = line({"turns": [SYSTEM, *GOOD["turns"]]}) * 4

MODEL_FIT = [
    Case("capture_layers_3", "attention.last_layers: 3 layers to capture, but tiny-llama has 2",
         args=["--attention.last_layers", "3"]),
    Case("capture_layers_100", "attention.last_layers: 100 layers to capture, but tiny-llama has 2",
         args=["--attention.last_layers", "100"]),
    Case("capture_layers_t5", "attention.last_layers: 3 layers to capture, but tiny-t5 has 2",
         args=["--model", "tiny-t5", "--attention.last_layers", "3"]),
    Case("rollout_context_over_model", "rollout.max_context: 5000 tokens, but tiny-llama has a context of 4096",
         args=["--rollout.max_context", "5000"]),
    Case("model_context_over_model", "model.max_context: 9000 tokens, but tiny-llama has a context of 4096",
         args=["--model.max_context", "9000"]),
    Case("context_plus_new_tokens", "rollout.max_context + rollout.sampling.max_new_tokens: 4090 + 64 = 4154",
         args=["--rollout.max_context", "4090", "--rollout.sampling.max_new_tokens", "64"]),
    Case("context_plus_cot_budget", "rollout.max_context + rollout.cot_max_new_tokens: 4000 + 200 = 4200",
         args=["--data", "generated:math", "--rollout.max_context", "4000", "--rollout.cot_max_new_tokens", "200"]),
    Case("missing_chat_template", "nochat: its tokenizer has no chat template", args=["--model", "{tmp}/nochat"],
         setup=lambda tmp: model_folder(tmp, "nochat", None)),
    Case("missing_chat_template_math", "nochat: its tokenizer has no chat template",
         args=["--model", "{tmp}/nochat", "--data", "generated:math"], setup=lambda tmp: model_folder(tmp, "nochat", None)),
    Case("template_drops_system", "dropsys: its chat template drops the system message", data=WITH_SYSTEM,
         args=["--model", "{tmp}/dropsys"], setup=lambda tmp: model_folder(tmp, "dropsys", DROPS_SYSTEM)),
    Case("template_rejects_system", "nosys: its chat template rejects a system message", data=WITH_SYSTEM,
         args=["--model", "{tmp}/nosys"], setup=lambda tmp: model_folder(tmp, "nosys", REJECTS_SYSTEM)),
    Case("unknown_hub_name", "org/no-such-model: not a preset", args=["--model", "org/no-such-model"]),
    Case("unknown_name_with_space", "no such model: not a preset", args=["--model", "no such model"]),
    Case("unknown_relative_path", "./missing-model: not a preset", args=["--model", "./missing-model"]),
]


def earlier_run(tmp: Path, files: dict[str, str] | None = None) -> None:
    (tmp / "run").mkdir()
    for name, text in (files or {"config.yaml": "model: {name: tiny-llama}\n", "metrics.jsonl": "{}\n"}).items():
        (tmp / "run" / name).write_text(text)


RUN_FOLDERS = [
    Case("existing_run", "run: already holds a run; pass --run.overwrite true", setup=earlier_run, keeps_run=True),
    Case("folder_of_other_files", "run: folder is not empty and holds no cagsr run", keeps_run=True,
         setup=lambda tmp: earlier_run(tmp, {"notes.txt": "mine"})),
    Case("overwrite_a_non_run", "run: folder is not empty and holds no cagsr run", keeps_run=True,
         args=["--run.overwrite", "true"], setup=lambda tmp: earlier_run(tmp, {"notes.txt": "mine"})),
    Case("resume_and_overwrite", "pass one of them", args=["--resume", "{tmp}/run", "--run.overwrite", "true"],
         setup=earlier_run, keeps_run=True),
    Case("overwrite_then_bad_data", "data.jsonl:1: invalid JSON", data="{oops\n", args=["--run.overwrite", "true"],
         setup=earlier_run, keeps_run=True),
    Case("overwrite_then_bad_layers", "attention.last_layers: 7 layers", setup=earlier_run, keeps_run=True,
         args=["--run.overwrite", "true", "--attention.last_layers", "7"]),
    Case("overwrite_then_unknown_model", "no-such-model: not a preset", setup=earlier_run, keeps_run=True,
         args=["--run.overwrite", "true", "--model", "no-such-model"]),
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
            "--rollout.episodes", "2", "--rollout.turns", "1", "--ppo.eval_episodes", "1", "--run.threads", "1",
            "--output-dir", str(folder)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err[-500:] for _, _, err in results]
    (err,) = [err for code, _, err in results if code == 2]
    assert len(err.strip().splitlines()) == 1 and ("another cagsr process" in err or "already holds a run" in err)
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 1  # one run's metrics, not two
