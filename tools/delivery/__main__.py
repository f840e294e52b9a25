"""The course-delivery commands, run from the repository root:

    python -m tools.delivery run [--out build] [--jobs 2] [--cell-timeout N] [01 02 ...]
    python -m tools.delivery refresh [--jobs 2] [--cell-timeout N] [01 02 ...]
    python -m tools.delivery student [--out build/student] [01 02 ...]
    python -m tools.delivery slides [--out build/slides] [01 02 ...]
    python -m tools.delivery site [--out build/site] [01 02 ...]

Each command is its module's ``main``; ``python -m tools.delivery COMMAND --help`` gives its options.
"""

from __future__ import annotations

import sys
from importlib import import_module

# command -> (module, arguments put before the user's, one-line help)
COMMANDS = {
    "run": ("course", ["run"], "execute every notebook into OUT (executed copies + HTML); never touches notebooks/"),
    "refresh": ("course", ["refresh"], "re-execute the stored notebooks in place"),
    "student": ("student", [], "the student edition: worked solutions taken out, checks kept"),
    "slides": ("slides", [], "each executed notebook as reveal.js lecture slides that work offline"),
    "site": ("website", [], "the executed course as a static website that works offline"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, _, text) in COMMANDS.items()]
    return ("usage: python -m tools.delivery COMMAND [options]\n\n"
            "Course delivery: run the notebooks, build the student edition, the slides and the site.\n\n"
            "commands:\n" + "\n".join(lines) + "\n\n"
            "`python -m tools.delivery COMMAND --help` lists a command's options.\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(usage() + f"\ndelivery: error: unknown command {command!r} (choose from "
              f"{', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module, prefix, _ = COMMANDS[command]
    return import_module(f"{__package__ or 'tools.delivery'}.{module}").main(prefix + rest)


if __name__ == "__main__":
    raise SystemExit(main())
