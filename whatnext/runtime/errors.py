"""The CLIs' bad-input error, in a module of its own so that light stages import it without the trainer."""

from __future__ import annotations

import click


class BadInput(click.ClickException):
    """Bad input (a file, clip or member at fault, named in the message): exit code 2 as the contract says."""

    exit_code = 2
