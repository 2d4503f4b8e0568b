"""A deliberately unsafe module for the bandit scan's test (B602: shell=True)."""

import subprocess


def run(command: str) -> int:
    return subprocess.call(command, shell=True)
