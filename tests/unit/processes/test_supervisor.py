from __future__ import annotations

from shop.processes.supervisor import HEALTHY_AFTER, MAX_BACKOFF, MIN_BACKOFF, next_backoff


def test_backoff_doubles_while_a_process_keeps_crashing():
    assert next_backoff(MIN_BACKOFF, ran_for=0.5) == 2 * MIN_BACKOFF
    assert next_backoff(8, ran_for=0.5) == 16


def test_backoff_is_capped():
    assert next_backoff(MAX_BACKOFF, ran_for=0.1) == MAX_BACKOFF


def test_a_process_that_ran_a_while_restarts_quickly_again():
    assert next_backoff(MAX_BACKOFF, ran_for=HEALTHY_AFTER + 1) == MIN_BACKOFF
