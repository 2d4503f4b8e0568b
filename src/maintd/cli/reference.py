"""The CLI reference in Markdown, generated from the commands themselves.

``python -m maintd.cli.reference > docs/cli.md`` regenerates it; a test fails
when the committed page and the commands disagree.
"""

from __future__ import annotations

from typing import Any

import typer.main

from maintd.cli.app import app

HEADER = """# CLI reference

Generated from the commands by `python -m maintd.cli.reference > docs/cli.md`;
`tests/test_docs.py` fails when this page and the commands disagree.

Every command that reads or writes the store takes `--db URL` (or
`MAINTD_DATABASE_URL`); the default is SQLite in `~/.local/state/maintd/maintd.db`.
Commands that list things take `--json` and then print one JSON object per line.
"""


def render() -> str:
    root = typer.main.get_command(app)
    parts = [HEADER]
    for path, command in _walk(root, ["maintd"]):
        parts.append(_command(path, command))
    return "\n".join(parts).rstrip() + "\n"


# Typer ships its own copy of click, so these go by shape, not by class.
def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found: list[tuple[list[str], Any]] = []
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            found.extend(_walk(command.commands[name], [*path, name]))
    else:
        found.append((path, command))
    return found


def _command(path: list[str], command: Any) -> str:
    args = " ".join(p.name.upper() for p in command.params if _is_argument(p))
    usage = " ".join(path) + (" [OPTIONS]" if any(_is_option(p) for p in command.params) else "")
    usage += f" {args}" if args else ""
    lines = [f"## `{' '.join(path)}`", "", (command.help or "").strip(), "", "```", usage, "```", ""]
    options = [p for p in command.params if _is_option(p) and p.name != "help"]
    arguments = [p for p in command.params if _is_argument(p)]
    if arguments or options:
        lines += ["| argument / option | meaning | default |", "| --- | --- | --- |"]
        for arg in arguments:
            lines.append(f"| `{arg.name.upper()}` | {_help(arg)} | required |")
        for opt in options:
            names = ", ".join(f"`{o}`" for o in opt.opts)
            env = f" (env `{opt.envvar}`)" if opt.envvar else ""
            lines.append(f"| {names} | {_help(opt)}{env} | {_default(opt)} |")
        lines.append("")
    return "\n".join(lines)


def _help(param: Any) -> str:
    return (getattr(param, "help", None) or "").replace("|", "\\|")


def _default(opt: Any) -> str:
    if opt.is_flag:
        return "off" if not opt.default else "on"
    if opt.required:
        return "required"
    if opt.default is None or opt.default == [] or opt.default == ():
        return "-"
    return f"`{opt.default}`"


if __name__ == "__main__":
    print(render(), end="")
