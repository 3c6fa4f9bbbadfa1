"""Commands that change a registered app or model version in place (or remove a version):
`update-app`, `set-cache`, `set-batching`, `set-payload-log` and `delete-version`.

Each prints one line of confirmation, what the server reports after the change, and
raises ClipperError on failure (the CLI prints it as one `error: ...` line, exit 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from clipper.cli.clients import admin_client
from clipper.core.config import Settings
from clipper.core.exceptions import InvalidRequest

__all__ = ["COMMANDS", "batching_summary"]


def update_app(args: argparse.Namespace, settings: Settings) -> None:
    """Change an app's latency SLO, default output and priority (those not given stay)."""
    if args.slo_micros is None and args.default_output is None and args.priority is None:
        raise InvalidRequest(
            "update-app changes nothing: give --slo-micros or --default-output (or --priority)"
        )
    with admin_client(settings) as admin:
        info = admin.update_app(
            args.name,
            latency_slo_micros=args.slo_micros,
            default_output=args.default_output,
            priority=args.priority,
        )
    ranked = "" if args.priority is None else f", priority {info.get('priority')}"
    print(
        f"App {args.name!r}: latency SLO {info.get('latency_slo_micros')} us, "
        f"default output {info.get('default_output')!r}{ranked}"
    )


def set_cache(args: argparse.Namespace, settings: Settings) -> None:
    """Turn the prediction cache of an app or of a model on or off."""
    enabled = args.state == "on"
    with admin_client(settings) as admin:
        admin.set_cache(enabled, app_name=args.app, model_name=args.model)
    what = f"App {args.app!r}" if args.app is not None else f"Model {args.model!r}"
    print(f"{what}: prediction cache {args.state}")


def set_batching(args: argparse.Namespace, settings: Settings) -> None:
    """Change a version's batching (default: the current version)."""
    asked = (args.batch_size, args.wait_timeout_micros, args.max_in_flight)
    if all(value is None for value in asked):
        raise InvalidRequest(
            "set-batching changes nothing: give --batch-size, --wait-timeout-micros or "
            "--max-in-flight"
        )
    with admin_client(settings) as admin:
        info = admin.set_batch_policy(
            args.model, args.version, batch_size=args.batch_size,
            batch_wait_timeout_micros=args.wait_timeout_micros,
            max_in_flight=args.max_in_flight,
        )  # fmt: skip
    print(f"{args.model}:{info.get('model_version')}: {batching_summary(info)}")


def batching_summary(info: Mapping[str, Any]) -> str:
    """`batch size 8, wait 500 us, 2 batch(es) in flight` from a model info dict."""
    size = info.get("batch_size")
    size_text = "adaptive" if size == -1 else str(size)
    return (
        f"batch size {size_text}, wait {info.get('batch_wait_timeout_micros')} us, "
        f"{info.get('max_in_flight')} batch(es) in flight"
    )


def set_payload_log(args: argparse.Namespace, settings: Settings) -> None:
    """Record an app's sampled queries (or a model version's) in a sink, or stop (`--off`)."""
    if (args.app is None) == (args.model is None):
        raise SystemExit("set-payload-log: name an app or give --model, not both")
    payload_log: dict[str, Any] | None = None
    if not args.off:
        payload_log = {"sink": args.sink, "sample": args.sample}
        if args.fields:
            payload_log["fields"] = args.fields
    with admin_client(settings) as admin:
        if args.model is None:
            what = f"App {args.app!r}"
            stored = admin.set_payload_log(args.app, payload_log).get("payload_log")
        else:
            info = admin.set_model_payload_log(args.model, payload_log, args.version)
            what = f"Model {args.model}:{info['model_version']}"
            stored = info.get("payload_log")
    if stored is None:
        print(f"{what}: payload log off")
    else:
        print(f"{what}: payload log to {stored['sink']}, sample {stored['sample']}, "
              f"fields {' '.join(stored['fields'])}")  # fmt: skip


def delete_version(args: argparse.Namespace, settings: Settings) -> None:
    """Stop a version's replicas (each drained first) and unregister it."""
    with admin_client(settings) as admin:
        admin.delete_versioned_model(args.model, args.version)
    print(f"Deleted {args.model}:{args.version}")


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], None]] = {
    "update-app": update_app,
    "set-cache": set_cache,
    "set-batching": set_batching,
    "set-payload-log": set_payload_log,
    "delete-version": delete_version,
}
"""These commands by their names on the command line."""
