"""`clipper rollout start|status|promote|abort|pause|resume MODEL`: canary rollouts
(README.md#canary-rollouts). Each prints what the server reports and raises ClipperError
on failure (the CLI prints it as one `error: ...` line, exit 1)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

from clipper.cli.clients import admin_client
from clipper.core.config import Settings
from clipper.core.exceptions import InvalidRequest

__all__ = ["add_rollout_command", "describe_rollout", "parse_plan", "rollout"]

ACTIONS = ("start", "status", "promote", "abort", "pause", "resume")


def add_rollout_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The `rollout` command's arguments."""
    command = add("rollout", "roll a new version out step by step, judged on the live "
                  "traffic (README: Canary rollouts)")  # fmt: skip
    command.add_argument("action", choices=ACTIONS, help=", ".join(ACTIONS))
    command.add_argument("model", help="the model")
    command.add_argument("version", nargs="?", help="the registered version to roll out (start)")
    command.add_argument(
        "--plan",
        metavar="JSON",
        help="the plan (start; default: shadow 60 s, "
        "then 5%%, 25%%, 50%%, 100%%, 60 s each), e.g. '{\"step_s\": 30}'",
    )
    command.add_argument("--json", action="store_true", help="print the status as JSON")


def parse_plan(text: str | None) -> dict[str, Any] | None:
    """A `--plan` or `--rollout` JSON object (None: the defaults)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"the plan is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("the plan must be a JSON object")
    return value


def rollout(args: argparse.Namespace, settings: Settings) -> None:
    """Start, show, promote, abort, pause or resume a model's rollout."""
    with admin_client(settings) as admin:
        if args.action == "start":
            if args.version is None:
                raise InvalidRequest("rollout start needs MODEL VERSION")
            status = admin.start_rollout(args.model, args.version, parse_plan(args.plan))
        elif args.action == "promote":
            status = admin.promote_rollout(args.model)
        elif args.action == "abort":
            status = admin.abort_rollout(args.model)
        elif args.action == "pause":
            status = admin.pause_rollout(args.model)
        elif args.action == "resume":
            status = admin.resume_rollout(args.model)
        else:
            found = admin.get_rollout(args.model)
            if found is None:
                raise InvalidRequest(f"model {args.model} has never had a rollout")
            status = found
    print(json.dumps(status, indent=2) if args.json else describe_rollout(status))


def describe_rollout(status: Mapping[str, Any]) -> str:
    """A rollout's status as a few lines of text."""
    head = (f"{status['model_name']}: {status['baseline_version']} -> "
            f"{status['model_version']}, {status['state']}")  # fmt: skip
    if status["state"] != "running":
        return f"{head}: {status.get('reason', '')}"
    share = "shadow" if status["step_kind"] == "shadow" else f"{status['share'] * 100:g}%"
    lines = [
        f"{head}{', paused' if status.get('paused') else ''}, "
        f"step {status['step']} of {status['steps']} ({share})"
    ]
    if "time_left_s" in status:
        lines[0] += f", {status['time_left_s']:.1f} s left"
    if "waiting_for" in status:
        lines.append(f"  waiting for {status['waiting_for']}")
    for check in status.get("checks", []):
        lines.append(
            f"  {check['name']:<17} {check['state']:<8} new {_figure(check['new'])}"
            f"  current {_figure(check['current'])}  limit {_figure(check['limit'])}"
            + (f"  ({check['queries_needed']} more queries)" if check["queries_needed"] else "")
        )
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
