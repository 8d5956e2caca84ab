"""The deliveries queue and its dead-letter queue; shapes come from `shared.topology`."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared import topology


class Queues(Construct):
    def __init__(self, scope: Construct, id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, id)
        # Any queue of the account may name this DLQ as its dead-letter target and the console's "Start DLQ
        # redrive" moves messages back to their source. A `byQueue` policy naming the deliveries queue would be
        # tighter but cannot be expressed: the two queues would reference each other (a circular dependency).
        self.dlq = sqs.Queue(
            self,
            "DeliveriesDlq",
            retention_period=Duration.seconds(topology.DLQ_RETENTION_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            redrive_allow_policy=sqs.RedriveAllowPolicy(redrive_permission=sqs.RedrivePermission.ALLOW_ALL),
            removal_policy=removal_policy,
        )
        self.deliveries = sqs.Queue(
            self,
            "Deliveries",
            visibility_timeout=Duration.seconds(topology.DELIVERIES_VISIBILITY_TIMEOUT_SECONDS),
            retention_period=Duration.seconds(topology.DELIVERIES_RETENTION_SECONDS),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=topology.DELIVERIES_MAX_RECEIVE_COUNT
            ),
            removal_policy=removal_policy,
        )
