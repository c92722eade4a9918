#!/usr/bin/env python
"""Smotra's command line: every Django command, plus `-c/--config PATH` to choose the config file."""

from __future__ import annotations

import os
import sys

# Commands where Django itself already uses -c (shell -c "code"): only --config selects the file.
COMMANDS_OWNING_SHORT_C = {"shell"}


def extract_config_option(argv: list[str]) -> tuple[list[str], str | None]:
    """Remove ``-c PATH`` / ``--config PATH`` / ``--config=PATH`` from argv; return the rest and PATH."""
    command = argv[1] if len(argv) > 1 else ""
    flags = {"--config"} if command in COMMANDS_OWNING_SHORT_C else {"-c", "--config"}
    rest, path, args = argv[:1], None, iter(argv[1:])
    for arg in args:
        if arg in flags:
            path = next(args, None)
            if path is None:
                sys.exit(f"{argv[0]}: error: {arg} needs a file path")
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smotra.settings")
    argv, config_path = extract_config_option(sys.argv)
    if config_path:
        os.environ["SMOTRA_CONFIG"] = config_path

    from smotra.config import ConfigError, get_config

    try:
        get_config()
    except ConfigError as exc:
        # One line, no traceback: the operator fixes the file and starts again.
        print(f"smotra: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)

    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
