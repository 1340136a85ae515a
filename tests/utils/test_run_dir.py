"""A run folder is never written by two runs: an earlier run is refused unless resumed or overwritten
(which clears it first), and a second process on a folder being written fails at once with one line."""

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cagsr.cli.main import main
from cagsr.errors import ConfigError
from cagsr.utils.run import (
    RunConfig,
    check_run_dir,
    default_run_dir,
    lock_run_dir,
    prepare_resumable_dir,
    prepare_run_dir,
    release_run_dir,
)

TINY = ["--config", "tiny", "--run.threads", "1", "--ppo.iterations", "1", "--ppo.epochs", "1",
        "--rollout.episodes", "2", "--rollout.turns", "1", "--rollout.sampling.max_new_tokens", "4",
        "--heldout.episodes", "1"]


@dataclass
class Job:
    run: RunConfig = field(default_factory=RunConfig)
    table: str = "dialogue"


def job(folder, overwrite=False, table="dialogue"):
    return Job(RunConfig(output_dir=str(folder), overwrite=overwrite), table)


def earlier_run(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True)
    files = {"config.yaml": "model: {name: tiny-llama}\n", "metrics.jsonl": '{"step": 1}\n'}
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


def listing(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


def test_an_earlier_run_is_refused_and_left_alone(tmp_path):
    files = earlier_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run; pass --run.overwrite true"):
        prepare_run_dir(str(tmp_path / "run"), "train", job(tmp_path / "run"))
    assert listing(tmp_path / "run") == files


def test_overwrite_clears_the_folder_first(tmp_path):
    earlier_run(tmp_path / "run")
    (tmp_path / "run" / "checkpoints").mkdir()
    folder = prepare_run_dir(str(tmp_path / "run"), "train", job(tmp_path / "run", overwrite=True))
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]
    assert "overwrite: true" in (folder / "config.yaml").read_text()
    release_run_dir(folder)


def test_a_folder_of_other_files_is_never_cleared(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="holds no cagsr run"):
            prepare_run_dir(str(tmp_path), "train", job(tmp_path, overwrite=overwrite))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_empty_and_new_folders_and_resume_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    check_run_dir(tmp_path / "empty")
    check_run_dir(tmp_path / "new")
    earlier_run(tmp_path / "run")
    check_run_dir(tmp_path / "run", resume=True)


def test_default_folders_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = default_run_dir("train")
    first.mkdir(parents=True)
    second = default_run_dir("train")
    assert second != first and not second.exists()


def test_reproduce_folder_continues_its_own_table_only(tmp_path):
    out = tmp_path / "rep"
    prepare_resumable_dir(out, job(out), lambda saved: saved.get("table") == "dialogue")
    (out / "rows").mkdir()
    prepare_resumable_dir(out, job(out), lambda saved: saved.get("table") == "dialogue")  # a rerun continues
    assert (out / "rows").exists()
    with pytest.raises(ConfigError, match="already holds another run"):
        prepare_resumable_dir(out, job(out, table="cot"), lambda saved: saved.get("table") == "cot")
    prepare_resumable_dir(out, job(out, True, "cot"), lambda saved: saved.get("table") == "cot")
    assert not (out / "rows").exists()
    release_run_dir(out)


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cagsr.utils.run import lock_run_dir
    lock_run_dir(Path(sys.argv[1]))
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def held(tmp_path):
    """A second process holding the lock of tmp_path/run (killed at the end)."""
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield folder
    proc.kill()
    proc.wait()


def test_a_second_process_fails_at_once(held):
    with pytest.raises(ConfigError, match="another cagsr process is writing this run folder"):
        check_run_dir(held)
    with pytest.raises(ConfigError, match="another cagsr process is writing this run folder"):
        lock_run_dir(held)


def test_the_lock_goes_with_its_process(tmp_path):
    folder = tmp_path / "run"
    subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(120)", ""), str(folder)], check=True,
                   capture_output=True)
    lock_run_dir(folder)  # the holder exited: free again, and no lock file was left in the folder
    assert list(folder.iterdir()) == []
    release_run_dir(folder)


def run_cli(argv, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", [
    ["train", *TINY],
    ["sft", "--model", "tiny-llama", "--data", "generated:dialogue", "--data.num_generated", "4", "--max-steps", "1"],
    ["eval", "--model", "tiny-llama", "--data", "generated:dialogue", "--limit", "2"],
    ["reproduce", "--table", "cot", "--scale", "tiny"],
])
def test_every_command_fails_at_once_on_a_folder_another_process_writes(command, held, capsys):
    code, lines = run_cli([*command, "--output-dir", str(held)], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "another cagsr process is writing this run folder" in lines[0]
    assert list(held.iterdir()) == []


@pytest.mark.parametrize("command", [
    ["train", *TINY],
    ["sft", "--model", "tiny-llama", "--data", "generated:dialogue", "--data.num_generated", "4", "--max-steps", "1"],
    ["eval", "--model", "tiny-llama", "--data", "generated:dialogue", "--limit", "2"],
])
def test_every_command_refuses_an_earlier_run(command, tmp_path, capsys):
    files = earlier_run(tmp_path / "run")
    code, lines = run_cli([*command, "--output-dir", str(tmp_path / "run")], capsys)
    assert code == 2 and len(lines) == 1 and "already holds a run" in lines[0], lines
    assert listing(tmp_path / "run") == files


def test_train_twice_refuses_then_overwrites(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", *TINY, "--output-dir", str(run)])
    capsys.readouterr()
    metrics = (run / "metrics.jsonl").read_text()
    code, lines = run_cli(["train", *TINY, "--output-dir", str(run)], capsys)
    assert code == 2 and "--run.overwrite true" in lines[0] and (run / "metrics.jsonl").read_text() == metrics
    main(["train", *TINY, "--output-dir", str(run), "--run.overwrite", "true"])
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # replaced, not appended to
    code, lines = run_cli(["train", "--resume", str(run), "--run.overwrite", "true"], capsys)
    assert code == 2 and "pass one of them" in lines[-1]
