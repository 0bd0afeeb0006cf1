"""The docs: examples run as written; the API list is the modules' ``__all__``."""

import importlib
import pkgutil
import re
from pathlib import Path

import qselax

DOCS = Path(__file__).resolve().parents[1] / "docs"


def api_markdown() -> str:
    """``docs/api.md`` as it must read: every module's public names (``__all__``)."""
    lines = [
        "# API: the public names",
        "",
        "Every module declares its public names in `__all__`; this page lists them "
        "(`tests/test_docs.py` checks it). Anything else is private. The top-level "
        "package re-exports the most used ones.",
        "",
    ]
    modules = ["qselax"] + sorted(
        m.name for m in pkgutil.walk_packages(qselax.__path__, "qselax.")
    )
    for name in modules:
        module = importlib.import_module(name)
        names = ", ".join(f"`{n}`" for n in sorted(module.__all__))
        lines += [f"## `{name}`", "", names, ""]
    return "\n".join(lines)


def test_api_page_lists_the_public_names():
    want = api_markdown()
    assert (DOCS / "api.md").read_text() == want, (
        "docs/api.md is out of date: regenerate it with "
        "python -c 'import tests.test_docs as t; print(t.api_markdown(), end=\"\")'"
        " > docs/api.md"
    )


def test_every_module_declares_public_names_and_imports_no_private_ones():
    for info in pkgutil.walk_packages(qselax.__path__, "qselax."):
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        source = Path(module.__file__).read_text()
        private = re.findall(r"from qselax[\w.]* import .*\b_[a-z]\w*", source)
        assert not private, (info.name, private)


def test_new_method_example_runs(capsys):
    text = (DOCS / "design.md").read_text()
    section = text[text.index("### A new method is a landscape and a config") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOCS / "design.md"), "exec"), namespace)  # noqa: S102
    run = namespace["run"]
    costs = [h["cost"] for h in run.history]
    assert all(b <= a + 1e-6 for a, b in zip(costs, costs[1:], strict=False))
    assert costs[-1] < 0.01  # 3.3 is reachable: 0.1 + 0.2 + 3.0 = 3.3
    assert "optimum rate" in capsys.readouterr().out
