"""`python -m bench.chaos` (`make chaos`): faults under load, then the invariants a user would check.

A stack of our own (`shop run all` with the Swarm stack's three worker pools, on free ports and a
RabbitMQ vhost of its own, order timers in seconds) takes a steady open-loop load of registrations
and orders from retrying clients (the same Idempotency-Key again after an error, as a real client
would). One fault after another hits it: each process kind killed with SIGKILL (the supervisor
restarts it), RabbitMQ and Kafka crashed and started again, Redis restarted with its data gone, the
PostgreSQL replica stopped for a while. Then the load stops, the stack settles (every timer due,
every outbox row sent, every queue and topic read), and the invariants are checked:

- every order a client was answered 2xx for exists, exactly once; none is left `reserving`, and
  none is still `PENDING` past its expiry;
- per product, initial stock + restocks = available + reserved + sold, nothing below zero;
- every outbox row is published; every timer that fell due fired;
- every email the final state calls for is in Mailpit, and none twice (duplicates are counted).

Modules: stack (the stack under test), workload (the clients), faults, invariants, __main__ (the
run, the table, var/bench/chaos.json and chaos.md).
"""
