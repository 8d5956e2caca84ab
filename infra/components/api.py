"""HTTP API: `POST /v1/events` to ingest, everything else to api; stage throttling, JSON access logs, optional
custom domain with an ACM certificate.

The access log is also the source of the ingest 5xx and 429 metrics (metric filters on `routeKey` and
`status`): HTTP APIs publish no per-status metric, and 429 is the ingest throttle's answer.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct

from infra.components.common import log_retention
from infra.config import ApiConfig

INGEST_ROUTE_KEY = "POST /v1/events"

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
}


def access_log_format() -> str:
    """JSON access log line; `status` is a number so metric filters can compare it."""
    fields = json.dumps(ACCESS_LOG_FIELDS)
    return fields[:-1] + ', "status": $context.status}'


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(access_log_format())


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ApiConfig,
        metrics_namespace: str,
        api_function: lambda_.IFunction,
        ingest_function: lambda_.IFunction,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id)
        self.metrics_namespace = metrics_namespace
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description="wa-gateway public API",
            create_default_stage=False,
            # With a custom domain, that is the only way in: the execute-api URL would bypass what the domain adds
            # (its TLS policy, a WAF or a firewall in front of it) and is one more address to keep secret.
            disable_execute_api_endpoint=config.domain is not None,
            default_integration=integrations.HttpLambdaIntegration("Api", api_function),
        )
        self.http_api.add_routes(
            path="/v1/events",
            methods=[apigwv2.HttpMethod.POST],
            integration=integrations.HttpLambdaIntegration("Ingest", ingest_function),
        )

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention(config.access_log_retention_days), removal_policy=removal_policy
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.throttle_rate_limit, burst_limit=config.throttle_burst_limit
            ),
            detailed_metrics_enabled=True,
            access_log_settings=_AccessLogSettings(self.access_logs),
        )

        self.url = self.stage.url
        if config.domain is not None:
            zone = route53.HostedZone.from_hosted_zone_attributes(
                self,
                "Zone",
                hosted_zone_id=config.domain.hosted_zone_id,
                zone_name=config.domain.hosted_zone_name,
            )
            certificate = (
                acm.Certificate.from_certificate_arn(self, "Certificate", config.domain.certificate_arn)
                if config.domain.certificate_arn
                else acm.Certificate(
                    self,
                    "Certificate",
                    domain_name=config.domain.domain_name,
                    validation=acm.CertificateValidation.from_dns(zone),
                )
            )
            domain = apigwv2.DomainName(
                self, "DomainName", domain_name=config.domain.domain_name, certificate=certificate
            )
            apigwv2.ApiMapping(self, "Mapping", api=self.http_api, domain_name=domain, stage=self.stage)
            route53.ARecord(
                self,
                "Alias",
                zone=zone,
                record_name=config.domain.domain_name,
                target=route53.RecordTarget.from_alias(
                    targets.ApiGatewayv2DomainProperties(domain.regional_domain_name, domain.regional_hosted_zone_id)
                ),
            )
            self.url = f"https://{config.domain.domain_name}/"

        # Ingest request count, 5xx and 429 from the access log (one datapoint per request).
        self.ingest_requests = self._count("IngestRequests", f'{{ $.routeKey = "{INGEST_ROUTE_KEY}" }}')
        self.ingest_5xx = self._count("Ingest5xx", f'{{ ($.routeKey = "{INGEST_ROUTE_KEY}") && ($.status >= 500) }}')
        self.ingest_429 = self._count("Ingest429", f'{{ ($.routeKey = "{INGEST_ROUTE_KEY}") && ($.status = 429) }}')

    def _count(self, metric_name: str, pattern: str) -> cloudwatch.Metric:
        filter_ = logs.MetricFilter(
            self,
            f"{metric_name}Filter",
            log_group=self.access_logs,
            filter_pattern=logs.FilterPattern.literal(pattern),
            metric_namespace=self.metrics_namespace,
            metric_name=metric_name,
            metric_value="1",
            default_value=0,
        )
        return filter_.metric(statistic="Sum")

    def ingest_rate_percent(self, count: cloudwatch.Metric, key: str, label: str) -> cloudwatch.MathExpression:
        """`key` names the count inside the expression; expressions shown together need different keys."""
        return cloudwatch.MathExpression(
            expression=f"IF(requests > 0, 100 * {key} / requests, 0)",
            using_metrics={key: count, "requests": self.ingest_requests},
            label=label,
        )
