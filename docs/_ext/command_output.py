"""The ``command-output`` directive: a command's output, captured at build time.

``.. command-output:: ode_models train --help`` runs ``python -m ode_models
train --help`` with the interpreter that builds the docs (``COLUMNS=100``
for a stable width) and shows what it prints, so the page cannot drift from
the command. The build fails if the command does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Any


def command_output(arguments: list[str], timeout: float = 120.0) -> str:
    """stdout of ``python -m ARGUMENTS``; raises if it exits non-zero.

    Parameters
    ----------
    arguments : list of str
        A module name and its arguments.
    timeout : float
        Seconds before the command is stopped.

    Returns
    -------
    str
    """
    environment = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=environment,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m {shlex.join(arguments)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def _command_output_directive() -> type:
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class CommandOutput(SphinxDirective):
        """``command-output``: the arguments are ``MODULE [ARGS...]`` of ``python -m``."""

        required_arguments = 1
        final_argument_whitespace = True
        has_content = False

        def run(self) -> list[Any]:
            """Run the command and show its output as a literal block."""
            arguments = shlex.split(self.arguments[0])
            text = command_output(arguments).rstrip()
            # Show the command under its installed name where it has one.
            shown = "ode-models" if arguments[0] == "ode_models" else f"python -m {arguments[0]}"
            block = nodes.literal_block(text, f"$ {shown} {shlex.join(arguments[1:])}\n{text}")
            block["language"] = "text"
            return [block]

    return CommandOutput


def setup(app: Any) -> dict[str, Any]:
    """Register the directive (Sphinx extension entry point)."""
    app.add_directive("command-output", _command_output_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
