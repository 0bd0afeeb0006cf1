"""The docs: examples run as written; the generated pages cover the code.

The site's generated pages come from ``docs/hooks.py`` (see its docstring); these
tests call the same functions, so they run without mkdocs installed.
"""

import importlib
import importlib.util
import pkgutil
import re
import sys
import types
from pathlib import Path

import pytest

import qselax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_hooks():
    spec = importlib.util.spec_from_file_location(
        "qselax_docs_hooks", DOCS / "hooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


def test_every_module_declares_public_names_and_imports_no_private_ones():
    for info in pkgutil.walk_packages(qselax.__path__, "qselax."):
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        source = Path(module.__file__).read_text()
        private = re.findall(r"from qselax[\w.]* import .*\b_[a-z]\w*", source)
        assert not private, (info.name, private)


def test_api_pages_show_every_public_name_once():
    walked = {m.name for m in pkgutil.walk_packages(qselax.__path__, "qselax.")}
    assert hooks.api_modules() == ["qselax", *sorted(walked)]
    for name in hooks.api_modules():
        module = importlib.import_module(name)
        page = hooks.api_page(name)
        assert page.startswith(f"::: {name}\n")
        if "members:" not in page:  # mkdocstrings shows __all__ (filters: public)
            assert all(hooks.home_module(name, n) == name for n in module.__all__)
            continue
        own = re.findall(r"^        - (\S+)$", page, re.M)
        moved = re.findall(r"^\| \[`(\w+)`\]\[([\w.]+)\] \|", page, re.M)
        assert sorted(own + [n for n, _ in moved]) == sorted(module.__all__), name
        for member, target in moved:  # documented, and the same object, at home
            home = importlib.import_module(target.rsplit(".", 1)[0])
            assert member in home.__all__, (name, target)
            assert getattr(home, member) is getattr(module, member), (name, target)


def test_a_module_without_public_names_stops_the_build(monkeypatch):
    monkeypatch.setitem(sys.modules, "qselax.undeclared", types.ModuleType("x"))
    with pytest.raises(ValueError, match="no __all__"):
        hooks.api_page("qselax.undeclared")


def test_cli_reference_has_every_option_of_every_command():
    text = hooks.cli_reference()
    parsers = hooks.cli_parsers()
    assert [prog for prog, _ in parsers] == [
        "qselax",
        "qselax run",
        "qselax replay",
        "qselax plot",
    ]
    for prog, parser in parsers:
        assert f"## `{prog}`" in text
        for action in parser._actions:
            for option in action.option_strings:
                assert re.search(rf"{re.escape(option)}\b", text), (prog, option)
    assert "<!-- qselax:cli -->" in (DOCS / "cli.md").read_text()


def test_result_key_tables_cover_the_schema():
    from qselax.results import COMMON_KEYS, TOP_KEYS

    top, common = hooks.result_keys_table("top"), hooks.result_keys_table("common")
    for key in TOP_KEYS:
        assert f"| `{key}` |" in (common if key in COMMON_KEYS else top), key
    page = (DOCS / "results.md").read_text()
    assert "<!-- qselax:result-keys -->" in page
    assert "<!-- qselax:common-keys -->" in page


def test_result_key_without_a_meaning_stops_the_build(monkeypatch):
    monkeypatch.delitem(hooks.TOP_KEY_MEANINGS, "seed")
    with pytest.raises(ValueError, match="without a meaning"):
        hooks.result_keys_table("top")


SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"$', re.M)


def _sections(path: Path) -> dict[str, list[int]]:
    """Line numbers of each ``--8<-- [start:name]`` ... ``[end:name]`` section."""
    found: dict[str, list[int]] = {}
    open_at: dict[str, int] = {}
    for i, line in enumerate(path.read_text().splitlines()):
        if m := re.search(r"--8<-- \[(start|end):([\w-]+)\]", line):
            kind, name = m.groups()
            if kind == "start":
                open_at[name] = i
            else:
                found[name] = list(range(open_at.pop(name) + 1, i))
    assert not open_at, (path, open_at)
    return found


def test_every_included_snippet_exists():
    pages = sorted(DOCS.rglob("*.md"))
    included = 0
    for page in pages:
        for path, section in SNIPPET.findall(page.read_text()):
            assert (ROOT / path).is_file(), (page, path)
            if section:
                assert section in _sections(ROOT / path), (page, path, section)
            included += 1
    assert included >= 10  # README sections, experiments, tutorials


def test_every_tutorial_line_is_on_its_page():
    scripts = sorted((DOCS / "tutorials").glob("*.py"))
    assert len(scripts) >= 3
    for script in scripts:
        page = (DOCS / "tutorials" / f"{script.stem}.md").read_text()
        shown = set()
        for path, section in SNIPPET.findall(page):
            if path == f"docs/tutorials/{script.name}":
                shown |= set(_sections(script)[section])
        lines = script.read_text().splitlines()
        body = lines.index('"""', 1) + 1  # after the module docstring
        hidden = [
            i + 1
            for i in range(body, len(lines))
            if lines[i].strip() and "--8<--" not in lines[i] and i not in shown
        ]
        assert not hidden, f"{script.name}: lines {hidden} are not on its page"


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
