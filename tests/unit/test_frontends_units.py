"""The pure parts of several query frontends: the default count, tickets, query ids, the
metrics merge (clipper.core.config, clipper.rpc.fanout, clipper.frontends)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from clipper.core.config import Settings, default_frontends
from clipper.frontends.metrics_merge import merge_expositions
from clipper.frontends.process import answering_frontend
from clipper.metrics.server_metrics import ServerMetrics
from clipper.rpc.fanout import TicketCheck, frontend_ticket
from clipper.rpc.protocol import Register


def test_the_default_is_one_frontend_up_to_two_cores_then_one_per_four_at_most_eight() -> None:
    counts = {cores: default_frontends(cores) for cores in (1, 2, 4, 8, 16, 32, 128)}

    assert counts == {1: 1, 2: 1, 4: 1, 8: 2, 16: 4, 32: 8, 128: 8}


def test_the_ray_placement_defaults_to_one_frontend_and_a_given_count_wins() -> None:
    assert Settings(placement="ray").resolved_frontends() == 1  # its replicas are not local
    assert Settings(placement="ray", frontends=3).resolved_frontends() == 3  # refused at start
    assert Settings(frontends=2).resolved_frontends() == 2


def test_a_ticket_admits_its_replica_only() -> None:
    check = TicketCheck("secret")
    ticket = frontend_ticket("secret", "m", "1", 0)

    assert check(Register("m", "1", 0, "doubles", 1, secret=ticket)) is None
    assert check(Register("m", "1", 1, "doubles", 1, secret=ticket)) is not None
    assert check(Register("m", "2", 0, "doubles", 1, secret=ticket)) is not None
    assert check(Register("m", "1", 0, "doubles", 1, secret="secret")) is not None
    assert frontend_ticket("other", "m", "1", 0) != ticket


def test_a_query_id_names_the_frontend_that_answered_it() -> None:
    ids = {index: [index + 1 + step * 3 for step in range(4)] for index in range(3)}

    assert all(answering_frontend(q, 3) == index for index, qs in ids.items() for q in qs)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_counters_and_histograms_are_summed_and_gauges_keep_the_largest() -> None:
    one, two = ServerMetrics(), ServerMetrics()
    one.for_app("a").observe_request(0.004, 1, 1)
    two.for_app("a").observe_request(0.2, 2, 2)
    two.for_app("b").observe_request(0.004, 1, 1)
    one.for_app("a").set_slo(0.1)
    two.for_app("a").set_slo(0.1)

    merged = samples(merge_expositions([one.render(), two.render()]))

    app_a = (("app", "a"),)
    assert merged[("clipper_app_requests_total", app_a)] == 2
    assert merged[("clipper_app_requests_total", (("app", "b"),))] == 1
    assert merged[("clipper_app_answers_total", app_a)] == 3
    assert merged[("clipper_app_request_latency_seconds_count", app_a)] == 2
    assert abs(merged[("clipper_app_request_latency_seconds_sum", app_a)] - 0.204) < 1e-9
    assert merged[("clipper_app_latency_slo_seconds", app_a)] == 0.1
