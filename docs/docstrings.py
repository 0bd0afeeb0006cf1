"""A griffe extension that reads qselax's docstrings as they are written.

qselax's docstrings are Google style with two habits griffe's Google parser does not
share: an ``Example:`` section (griffe knows only ``Examples:``, and would render
the doctest as a paragraph) and Sphinx cross-reference roles such as
:class:`Selection`.  This extension rewrites both in memory when griffe has loaded
the package, so the sources stay as they are:

* ``Example:`` becomes ``Examples:``, so doctests are shown as code;
* a role becomes an optional cross-reference: a link to the name's API entry where
  the site has one, plain code where it has none (a name outside qselax).

Declared in ``mkdocs.yml`` under the python handler's ``extensions``.
"""

from __future__ import annotations

import html
import re

import griffe

__all__ = ["QselaxDocstrings"]

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.M)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|data|attr|mod|obj|exc):`(~?)([^`]+)`")


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` stands for in ``obj``'s scope, or ``None``."""
    if name.startswith("."):  # relative to the object's package: ``:mod:`.base```
        package = obj.module if obj.module.is_init_module else obj.module.parent
        return f"{package.path}{name}" if package is not None else None
    if name.startswith("qselax"):
        return name
    head, _, rest = name.partition(".")
    try:
        path = obj.resolve(head)
    except griffe.NameResolutionError:
        return None
    return f"{path}.{rest}" if rest else path


def _rewrite(obj: griffe.Object, text: str) -> str:
    def role(match: re.Match) -> str:
        tilde, name = match.groups()
        name = name.removesuffix("()")
        shown = name.rsplit(".", 1)[-1] if tilde or name.startswith(".") else name
        code = f"<code>{html.escape(shown)}</code>"
        target = _target(obj, name)
        if target is None:
            return code
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'

    return _ROLE.sub(role, _EXAMPLE.sub(r"\1Examples:", text))


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class QselaxDocstrings(griffe.Extension):
    """Rewrites ``Example:`` sections and Sphinx roles once a package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
