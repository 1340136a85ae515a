"""No package imports one above it: the layout follows the data flow (../shared/docs/layering.md).

The walk reads every `import` / `from ... import` of cagsr/ (module level and inside functions)
with `ast`, so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# Top to bottom. A package may import its own modules and any package on a lower floor.
FLOORS = [
    {"__main__"},
    {"api"},
    {"cli"},
    {"bench", "reproduce"},
    {"ppo"},
    {"evaluation"},
    {"scoring"},
    {"reward", "sft"},
    {"rollout"},
    {"salience"},
    {"formatting"},
    {"models", "report"},
    {"attention", "data"},
    {"utils"},
    {"distributed", "config", "human"},
    {"errors", "__init__"},
]
LEVEL = {name: len(FLOORS) - i for i, floor in enumerate(FLOORS) for name in floor}
PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "cagsr"
# Inside evaluation/, top to bottom: the analysis reads what metrics and reward models produce, reward
# models are trained on metric features; the eval job (runner.py) and config.py sit beside them.
EVALUATION_FLOORS = ["analysis", "reward_models", "metrics"]


def package_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("cagsr.")}
    return found


def upward_imports(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        own = package_of(path, root)
        for target in imported_packages(path) - {own}:
            if target not in LEVEL or own not in LEVEL:
                problems.append(f"{path.relative_to(root)}: package {target if target not in LEVEL else own!r} "
                                "has no floor in tests/test_layering.py")
            elif LEVEL[target] >= LEVEL[own]:
                problems.append(f"{path.relative_to(root)}: {own} imports {target} (not below it)")
    return problems


def test_no_package_imports_one_above_it():
    assert upward_imports(PACKAGE_ROOT) == []


def test_the_walk_catches_an_upward_lazy_import(tmp_path):
    fake = tmp_path / "cagsr"
    (fake / "reward").mkdir(parents=True)
    (fake / "reward" / "bad.py").write_text("def f():\n    from cagsr.ppo.trainer import Trainer\n")
    assert upward_imports(fake) == ["reward/bad.py: reward imports ppo (not below it)"]


@pytest.mark.parametrize("floor", ["scoring", "reward", "evaluation"])
def test_every_stage_package_has_a_floor(floor):
    assert floor in LEVEL and (PACKAGE_ROOT / floor).is_dir()


def evaluation_upward_imports(root: Path) -> list[str]:
    """Imports between evaluation's subpackages that go up EVALUATION_FLOORS."""
    level = {name: -i for i, name in enumerate(EVALUATION_FLOORS)}
    problems = []
    for path in sorted((root / "evaluation").rglob("*.py")):
        own = path.relative_to(root / "evaluation").parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cagsr.evaluation."):
                target = node.module.split(".")[2]
                if own in level and target in level and level[target] > level[own]:
                    problems.append(f"evaluation/{path.relative_to(root / 'evaluation')}: {own} imports {target}")
    return problems


def test_evaluation_subpackages_import_downward_only():
    assert all((PACKAGE_ROOT / "evaluation" / name).is_dir() for name in EVALUATION_FLOORS)
    assert evaluation_upward_imports(PACKAGE_ROOT) == []


def test_the_evaluation_walk_catches_metrics_importing_analysis(tmp_path):
    (tmp_path / "evaluation" / "metrics").mkdir(parents=True)
    (tmp_path / "evaluation" / "metrics" / "bad.py").write_text("from cagsr.evaluation.analysis.paired import judge\n")
    assert evaluation_upward_imports(tmp_path) == ["evaluation/metrics/bad.py: metrics imports analysis"]
