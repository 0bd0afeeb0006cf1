"""mkdocs hooks: the documentation pages that are generated from the code.

Declared in ``mkdocs.yml`` under ``hooks:``.  Nothing here is copied by hand:

* **API reference**: one page per module of the package, ``api/<module>.md``, made
  at build time (:func:`api_page`) and appended to the ``API reference`` section of
  the nav.  A page shows the module's ``__all__`` and nothing else: names defined in
  the module are rendered by mkdocstrings, names it re-exports are listed with a link
  to the module that documents them.  A module without ``__all__`` stops the build.
* ``<!-- qselax:api-index -->``: the table of modules with their docstrings' first
  lines (:func:`api_index`).
* ``<!-- qselax:cli -->``: the ``--help`` text of ``qselax`` and of every
  subcommand, from :func:`qselax.cli.build_parser` (:func:`cli_reference`).
* ``<!-- qselax:result-keys -->`` and ``<!-- qselax:common-keys -->``: the keys of
  ``result.json`` from :data:`qselax.results.TOP_KEYS` and
  :data:`qselax.results.COMMON_KEYS`, each with its meaning
  (:func:`result_keys_table`); a key without a meaning here stops the build.

The functions import only the standard library and qselax, so the tests
(``tests/test_docs.py``) call them without mkdocs installed.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_SECTION = "API reference"
HELP_WIDTH = 88

# ---------------------------------------------------------------------------
# API reference.


def api_modules() -> list[str]:
    """Every module of the package: ``qselax`` first, then the rest sorted."""
    import qselax

    found = pkgutil.walk_packages(qselax.__path__, "qselax.")
    return ["qselax", *sorted(m.name for m in found)]


def public_names(name: str) -> list[str]:
    """The module's ``__all__``; a ``ValueError`` if it declares none."""
    module = importlib.import_module(name)
    if not hasattr(module, "__all__"):
        raise ValueError(f"module {name} declares no __all__: its public names")
    return list(module.__all__)


@functools.cache
def _imports(name: str) -> dict[str, str]:
    """Names bound by the module's top-level ``from qselax... import`` statements,
    each with the module it is imported from."""
    module = importlib.import_module(name)
    tree = ast.parse(Path(module.__file__).read_text())
    package = (
        name if Path(module.__file__).name == "__init__.py" else name[: name.rfind(".")]
    )
    bound = {}
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        source = node.module or ""
        if node.level:  # relative: ``from .base import x``
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            source = f"{base}.{source}" if source else base
        if source.split(".")[0] != "qselax":
            continue
        for alias in node.names:
            bound[alias.asname or alias.name] = source
    return bound


def home_module(name: str, member: str) -> str:
    """The module that defines ``member`` of module ``name`` (following re-exports)."""
    seen = set()
    while member in _imports(name) and (name, member) not in seen:
        seen.add((name, member))
        name = _imports(name)[member]
    return name


def api_page(name: str) -> str:
    """The markdown of module ``name``'s API page."""
    names = public_names(name)
    own = [n for n in names if home_module(name, n) == name]
    moved = sorted((n for n in names if n not in own), key=str.lower)
    # The module is the page's one level-1 heading (its anchor is the module's
    # cross-reference target); its members are level 2.
    lines = [f"::: {name}", "    options:", "      heading_level: 1"]
    if moved:
        # Only the names defined here are rendered here; a re-exported name is
        # documented once, on its own module's page.
        members = [f"        - {n}" for n in own]
        lines += ["      members:", *members] if own else ["      members: []"]
        lines += [
            "",
            "## Re-exported names",
            "",
            f"`{name}` also exports these names; each is documented where it is "
            "defined.",
            "",
            "| name | defined in |",
            "|---|---|",
        ]
        for n in moved:
            home = home_module(name, n)
            lines.append(f"| [`{n}`][{home}.{n}] | [`{home}`]({home}.md) |")
    return "\n".join(lines) + "\n"


def _summary(name: str) -> str:
    """The first paragraph of the module's docstring, Sphinx roles as code."""
    doc = (importlib.import_module(name).__doc__ or "").strip()
    first = " ".join(doc.split("\n\n")[0].split())
    return re.sub(r":[a-z]+:`~?\.?([^`]+)`", r"`\1`", first).replace("|", "\\|")


def api_index() -> str:
    """The table of modules on ``api/index.md``."""
    lines = ["| module | what it holds |", "|---|---|"]
    for name in api_modules():
        public_names(name)  # every module must declare them
        lines.append(f"| [`{name}`]({name}.md) | {_summary(name)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Command-line reference.


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=HELP_WIDTH)
    return parser.format_help()


def cli_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """``(prog, parser)`` of ``qselax`` and of each of its subcommands."""
    from qselax.cli import build_parser

    parser = build_parser()
    found = [(parser.prog, parser)]
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            found += [(sub.prog, sub) for sub in action.choices.values()]
    return found


def cli_reference() -> str:
    """A section per parser with its ``--help`` output."""
    parts = []
    for prog, parser in cli_parsers():
        parts += [f"## `{prog}`", "", "```text", _help(parser).rstrip(), "```", ""]
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# result.json keys.

TOP_KEY_MEANINGS = {
    "schema": "the layout's version, [`SCHEMA`][qselax.results.SCHEMA]",
    "qselax_version": "the package version that wrote the file",
    "method": "the run's `--method`, one of {methods}",
    "seed": "the run's seed (data split, network, solvers)",
    "solver": "the main solver: the first of `--solver`",
    "config": "the resolved settings that apply to this method (no other "
    "method's flags)",
    "solvers": "per solver: its common keys, its `history` (one record per sweep) "
    "and its method's own keys under the method's name",
    "references": "baselines on the same data: `random` (the unmasked network), "
    "`dense` (the trained twin), `teacher`; for nk-esn the exact rows",
    "dataset": "sizes and classes of the splits (`null` for nk-esn)",
    "model": "the network",
    "platform": "versions, backend and devices "
    "([`platform_info`][qselax.results.platform_info])",
}

COMMON_KEY_MEANINGS = {
    "test_accuracy": "accuracy on the test split (only ever scored); nk-esn: the "
    "main row's top committee's generalisation score / 625",
    "train_accuracy": "accuracy on the training split; nk-esn: that committee's "
    "training-start fitness",
    "val_accuracy": "accuracy on the validation split (`null` for nk-esn)",
    "optimum_rate": "share of all group solves, every sweep, whose chosen bitstring "
    "attains the group's exhaustive minimum (relative tolerance 1e-6)",
    "top1_optimum_rate": "the same for the single most probable bitstring",
    "nontrivial_optimum_rate": "`optimum_rate` over groups whose landscape is not flat",
    "lookups": "landscape entries (or oracle evaluations) the solver consulted",
    "landscape_evals": "landscape entries computed (G 2^K a sweep)",
    "oracle_calls": "coherent oracle uses (Grover iterations)",
    "shots": "circuit executions measured (finite-shot mode)",
    "resources": "per group: qubits, depth, two-qubit gates, parameters, optimiser "
    "steps, readout; and the number of groups",
    "compile_s": "seconds to compile one sweep (`null` where not measured separately)",
    "run_s": "seconds of the run after compilation",
}


def result_keys_table(which: str) -> str:
    """The table of ``TOP_KEYS`` (``which="top"``, common keys folded into one
    row) or of ``COMMON_KEYS`` (``which="common"``), each key with its meaning."""
    from qselax.cli import METHODS
    from qselax.results import COMMON_KEYS, TOP_KEYS

    if which == "common":
        keys, meanings = list(COMMON_KEYS), COMMON_KEY_MEANINGS
    else:
        keys = [k for k in TOP_KEYS if k not in COMMON_KEYS]
        meanings = TOP_KEY_MEANINGS
    missing = [k for k in keys if k not in meanings]
    stale = [k for k in meanings if k not in keys]
    if missing or stale:
        raise ValueError(
            f"docs/hooks.py: result.json keys without a meaning {missing}, "
            f"meanings of keys the schema no longer has {stale}"
        )
    lines = ["| key | meaning |", "|---|---|"]
    for key in TOP_KEYS if which == "top" else keys:
        if which == "top" and key == COMMON_KEYS[0]:
            lines.append(
                "| the common keys | the main solver's common keys (next table), "
                "so a script reads `result['test_accuracy']` whatever the method |"
            )
        if key in meanings:
            methods = ", ".join(f"`{m}`" for m in METHODS)
            lines.append(f"| `{key}` | {meanings[key].format(methods=methods)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# mkdocs events.

MARKERS = {
    "<!-- qselax:api-index -->": api_index,
    "<!-- qselax:cli -->": cli_reference,
    "<!-- qselax:result-keys -->": lambda: result_keys_table("top"),
    "<!-- qselax:common-keys -->": lambda: result_keys_table("common"),
}


def on_config(config):
    """Appends one nav entry per module to the ``API reference`` section."""
    # Document this checkout's qselax, as mkdocstrings does (``paths: ["."]``),
    # even where another copy is installed.  (mkdocs restores ``sys.path`` after
    # loading a hook file, so this cannot happen at import.)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for entry in config.nav or []:
        if isinstance(entry, dict) and API_SECTION in entry:
            entry[API_SECTION] += [{name: f"api/{name}.md"} for name in api_modules()]
            return config
    raise ValueError(f"mkdocs.yml: the nav has no {API_SECTION!r} section")


def on_files(files, config):
    """Adds the generated API pages and the experiments' README figures."""
    from mkdocs.structure.files import File

    for name in api_modules():
        files.append(File.generated(config, f"api/{name}.md", content=api_page(name)))
    # An experiment's page includes its README, whose figures sit beside it in
    # experiments/<name>/figures/: the site gets them at the same relative place.
    for path in sorted((ROOT / "experiments").glob("*/figures/*.png")):
        rel = path.relative_to(ROOT).as_posix()
        files.append(File.generated(config, rel, abs_src_path=str(path)))
    # Top-level pages include README sections whose figures are linked as
    # docs/figures/...: the site serves them at that path too.
    for path in sorted((ROOT / "docs" / "figures").glob("*.png")):
        rel = f"docs/figures/{path.name}"
        files.append(File.generated(config, rel, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Replaces each marker with its generated text."""
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
