"""The bad-input corpus of test_bad_inputs.py: the Case record and the kinds of bad input added for real
users' files (encodings, malformed JSON, dialogue shapes, containers, settings that do not fit the model,
run-folder collisions). Each case is one line, exit code 2 and no run folder (or an earlier run untouched).
"""

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    Case("hub_dataset_offline", "hf:org/absent-dataset: not a local folder or a cached dataset, and HF_HUB_OFFLINE",
         args=["--data", "hf:org/absent-dataset"]),
    Case("hub_dataset_offline_split", "hf:org/absent:test: not a local folder or a cached dataset",
         args=["--data", "hf:org/absent:test"]),
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
    Case("model_context_removed", "--model.max_context was removed: it only checked itself against the model",
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
    Case("model_config_not_json", "broken/config.json:1: invalid JSON", args=["--model", "{tmp}/broken"],
         setup=lambda tmp: (tmp / "broken").mkdir() or (tmp / "broken" / "config.json").write_text("{oops\n")),
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
