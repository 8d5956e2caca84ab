"""One construct per concern: network, redis, queues, functions, api, workers, schedules, observability."""
