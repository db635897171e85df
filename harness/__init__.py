"""What the end-to-end tests, the benchmarks and the chaos run share: a private `shop run all` stack
(harness.stack), its ports and processes (harness.processes), RabbitMQ vhosts (harness.rabbitmq),
plain HTTP calls to the gateway (harness.http), Mailpit (harness.mailpit) and progress lines
(harness.progress). It imports nothing from `tests` or `bench`."""
