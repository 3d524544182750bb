"""The ``centinela`` command: one argparse parser, handlers imported on demand."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Sequence
from typing import cast

from common.errors import UsageError
from common.extras import MissingDependency, missing_from

# subcommand -> "module:function"; each function takes the parsed args and returns an exit status.
HANDLERS = {
    "sim": "sim.main:run_sim",
    "panel": "panel.main:run_panel",
    "hub": "hub.main:run_hub",
    "scenario": "sim.scenario_cli:run_scenarios",
    "doctor": "centinela.doctor:run_doctor",
    "events": "hub.events_cli:run_events",
    "keygen": "centinela.keygen:run_keygen",
    "cloud": "cloud.main:run_cloud",
    "tag": "centinela.tag:run_tag",
}


def _version() -> str:
    try:
        return importlib.metadata.version("centinela")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="centinela", description="centinela alarm panel, hub and simulator"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("sim", help="run a whole simulated site (broker, panel, hub, cloud)")
    p.add_argument("site", nargs="?", help="site file (TOML); the bundled demo site by default")
    p.add_argument("--broker", help="use this broker (mqtt://HOST:PORT or mqtts://…)")
    p.add_argument("--headless", action="store_true", help="no interactive view; log to stderr")

    p = sub.add_parser("panel", help="run the panel process")
    p.add_argument("--config", required=True, help="panel configuration file (TOML)")

    p = sub.add_parser("hub", help="run the hub process")
    p.add_argument("--config", required=True, help="hub configuration file (TOML)")

    p = sub.add_parser("scenario", help="scenario files (simulated site or a rig)")
    ssub = p.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    r = ssub.add_parser("run", help="run scenario files; exit 0 only if every expectation held")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--junit", metavar="OUT.xml", help="write a JUnit XML report")
    r.add_argument("--realtime", action="store_true", help="run in real time, not virtual time")
    r.add_argument("--rig", metavar="RIG.toml", help="drive a real panel described by a rig file")

    p = sub.add_parser("doctor", help="check devices, configuration and broker")
    p.add_argument("--config", help="panel or hub configuration file to check")

    p = sub.add_parser("events", help="the event log as the customer area shows it")
    p.add_argument("--site", help="site id (default: the [hub] site of --config)")
    p.add_argument("--panel")
    p.add_argument("--since", help="ISO time or a duration such as 1h, 30m, 2d")
    p.add_argument("--user")
    p.add_argument("--type")
    p.add_argument("--follow", action="store_true", help="keep printing new events")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--db", help="hub store (default: $CENTINELA_HUB_DB or ./hub.db)")
    p.add_argument("--config", help="hub configuration file (for the store path)")

    p = sub.add_parser("keygen", help="print a new random 256-bit panel key")
    p.add_argument(
        "--sun", action="store_true", help="print a new [nfc] meta_key and file_key (128-bit)"
    )

    p = sub.add_parser("tag", help="NFC tags: enrol NTAG 424 DNA tags for SUN messages")
    tsub = p.add_subparsers(dest="tag_command", metavar="ACTION", required=True)
    e = tsub.add_parser(
        "enroll", help="personalise a factory-fresh NTAG 424 DNA at the reader; prints its UID"
    )
    e.add_argument("--config", required=True, help="the site file ([nfc] keys, devices.nfc)")
    e.add_argument(
        "--force", action="store_true", help="re-enrol a tag already personalised by this site"
    )
    e.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a tag")

    p = sub.add_parser("cloud", help="serve the customer area and the app API")
    p.add_argument("--config", required=True, help="cloud configuration file (TOML)")
    p.add_argument(
        "--worker",
        help="this worker's name when several share the load (its MQTT client id is"
        " CLIENT_ID-NAME; keep it the same across restarts)",
    )

    _finish(parser)
    return parser


def _finish(parser: argparse.ArgumentParser) -> None:
    """Rules for every (sub)command: no abbreviated options, ``-v`` after the subcommand too."""
    parser.allow_abbrev = False  # `--conf` must not quietly mean `--config`
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "-v" not in child._option_string_actions:
                    child.add_argument(
                        "-v",
                        "--verbose",
                        action="store_true",
                        default=argparse.SUPPRESS,  # keep a -v given before the subcommand
                        help="log debug messages",
                    )
                _finish(child)


def _subparser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The innermost subcommand's parser, so its errors show its own usage line."""
    current = parser
    while True:
        found = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                name = getattr(args, action.dest, None)
                found = action.choices.get(name) if name is not None else None
        if found is None:
            return current
        current = found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``centinela`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _subparser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module_name, func_name = HANDLERS[args.command].split(":")
    try:
        try:
            module = importlib.import_module(module_name)
            handler = cast(Callable[[argparse.Namespace], int], getattr(module, func_name))
            return handler(args)
        except ModuleNotFoundError as exc:
            # An optional library this host did not install (the command's or a device's).
            missing = missing_from(exc)
            if missing is None:
                raise
            raise missing from None
    except MissingDependency as exc:
        print(f"centinela {args.command}: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"centinela {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
