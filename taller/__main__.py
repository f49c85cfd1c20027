"""python -m taller check STEP [--package PACKAGE] [--lang es|en]
python -m taller generate [--check] [--force]"""

from __future__ import annotations

import argparse
import sys

from taller import checker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taller",
        description="The workshop: check an attendee's step, or generate the skeletons.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="run a step's checks against a package (by default, its skeleton)"
    )
    check.add_argument("step", type=int, choices=checker.STEPS, help="the step: 1, 2 or 3")
    check.add_argument(
        "--package",
        metavar="PACKAGE",
        help="the package to check (default: taller.pasoSTEP); step1_scheduler is the solution",
    )
    check.add_argument(
        "--lang",
        choices=["es", "en"],
        help="the language of the report (default: English if LANG says so, else Spanish)",
    )
    generate = commands.add_parser(
        "generate", help="write taller/pasoN/ from the steps' EXERCISE markers"
    )
    generate.add_argument(
        "--check", action="store_true", help="write nothing; fail if a skeleton is stale"
    )
    generate.add_argument(
        "--force", action="store_true", help="overwrite skeleton files that someone has changed"
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        lang = args.lang or checker.language()
        return checker.run(args.step, args.package, lang)
    from taller import skeletons

    return skeletons.main(check=args.check, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
