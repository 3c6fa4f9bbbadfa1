"""Payload logging (issue 25): a record of each sampled query of an app (and its feedback),
or answered by a model version, written to a sink in the background.

Layering: imports the data plane's values and the metrics below it; the query surfaces
(`frontend/`) hand it each answered request through a tap (`tap.py`), the server runs its
writers (`writer.py`), the control plane validates the setting with `sinks.py`.
"""

from clipper.payloads.sinks import SinkSettings
from clipper.payloads.tap import PayloadTap, offer_to_versions
from clipper.payloads.writer import PayloadLog

__all__ = ["PayloadLog", "PayloadTap", "SinkSettings", "offer_to_versions"]
