"""The docs' Python examples run as written."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "index.md"


def test_new_method_example_runs(capsys):
    text = DOCS.read_text()
    section = text[text.index("### A new method is a landscape and a config") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # noqa: S102
    run = namespace["run"]
    costs = [h["cost"] for h in run.history]
    assert all(b <= a + 1e-6 for a, b in zip(costs, costs[1:], strict=False))
    assert costs[-1] < 0.01  # 3.3 is reachable: 0.1 + 0.2 + 3.0 = 3.3
    assert "optimum rate" in capsys.readouterr().out
