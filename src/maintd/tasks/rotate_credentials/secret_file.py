"""The consumers' secret file: read who it names, write a new user and password atomically.

``env``: ``KEY=value`` lines (``PGUSER``, ``PGPASSWORD``), the format of systemd's
EnvironmentFile and docker's --env-file; ``json``: an object with ``user`` and ``password``.
Other lines and keys are kept as they are. The new file is written beside the old one (same
owner, mode 0600), fsynced, renamed over it, and the directory fsynced: a consumer reads the
old file or the new one, never half of either, and a crash leaves one of them.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Literal

Format = Literal["env", "json"]
_KEYS = {"env": ("PGUSER", "PGPASSWORD"), "json": ("user", "password")}


class SecretFileError(Exception):
    """The file cannot be read, parsed or written; the message names the file and why."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


def read(path: str, fmt: Format) -> Credentials:
    """Raises SecretFileError."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise SecretFileError(f"secret file {path}: {exc.strerror or exc}") from None
    user_key, password_key = _KEYS[fmt]
    values = _parse(path, text, fmt)
    if user_key not in values or password_key not in values:
        raise SecretFileError(f"secret file {path}: no {user_key} and {password_key} ({fmt} format)")
    return Credentials(values[user_key], values[password_key])


def _parse(path: str, text: str, fmt: Format) -> dict[str, str]:
    if fmt == "json":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise SecretFileError(f"secret file {path}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise SecretFileError(f"secret file {path}: not a JSON object")
        return {str(k): str(v) for k, v in doc.items()}
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def render(old_text: str, fmt: Format, new: Credentials) -> str:
    """The file's text with the user and password replaced; everything else kept."""
    user_key, password_key = _KEYS[fmt]
    if fmt == "json":
        doc = json.loads(old_text) if old_text.strip() else {}
        doc.update({user_key: new.user, password_key: new.password})
        return json.dumps(doc, indent=2) + "\n"
    wanted = {user_key: new.user, password_key: new.password}
    lines = []
    for line in old_text.splitlines():
        key = line.partition("=")[0].strip()
        if "=" in line and key in wanted and not line.lstrip().startswith("#"):
            lines.append(f"{key}={wanted.pop(key)}")
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in wanted.items()]
    return "\n".join(lines) + "\n"


def write(path: str, fmt: Format, new: Credentials) -> str:
    """Replace the credentials in ``path`` atomically; returns the text it replaced (for
    nothing but a rollback: never log it). Raises SecretFileError; on error the file is as before."""
    try:
        with open(path) as f:
            old_text = f.read()
        st = os.stat(path)
    except OSError as exc:
        raise SecretFileError(f"secret file {path}: {exc.strerror or exc}") from None
    text = render(old_text, fmt, new)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            if os.geteuid() == 0:
                os.fchown(f.fileno(), st.st_uid, st.st_gid)  # the consumer keeps reading it
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = ""
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise SecretFileError(f"secret file {path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp:
            os.unlink(tmp)
    return old_text
