"""The worked example of docs/architecture.md ("Adding a workload") runs exactly as written."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT, run_cli


def test_the_documented_workload_example_trains_from_a_user_config_dir(tmp_path):
    text = (ROOT / "docs" / "architecture.md").read_text().split("## Adding a workload", 1)[1]
    python = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    dataset_yaml, model_yaml = re.findall(r"```yaml\n(.*?)```", text, re.S)
    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "__init__.py").write_text("")
    (tmp_path / "my_project" / "sine.py").write_text(python)
    for group, name, body in (("dataset", "sine", dataset_yaml), ("model", "sine_mlp", model_yaml)):
        (tmp_path / "my_configs" / group).mkdir(parents=True)
        (tmp_path / "my_configs" / group / f"{name}.yaml").write_text(body)
    command = re.search(r"python experiments/train.py (.*)\n", text).group(1).split()
    result = run_cli(
        [
            *command,
            "trainer.max_epochs=3",
            "trainer.batch_size=32",
            f"paths.runs={tmp_path / 'runs'}",
            "device=cpu",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "runs").rglob("summary.json")
    summary = json.loads(path.read_text())
    assert summary["status"] == "completed" and summary["method"] == "lookahead_adam"
    assert summary["dataset"] == "sine" and summary["target"] == "valid_mse"
    # the workload's own targets and direction reach the summary: steps-to-target without analysis code
    assert summary["targets"] == [0.3, 0.1] and summary["higher_is_better"] is False
    assert set(summary["reached"]) <= {"0.3", "0.1"}
    records = [json.loads(line) for line in path.with_name("metrics.jsonl").read_text().splitlines()]
    assert summary["best"]["valid_mse"] == min(r["valid_mse"] for r in records)
    assert records[-1]["valid_mse"] < records[0]["valid_mse"]  # it learns
