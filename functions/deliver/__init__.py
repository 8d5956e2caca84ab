"""The deliver Lambda: SQS deliveries queue -> signed POST to the tenant's webhook, retries, DLQ."""
