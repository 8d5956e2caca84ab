"""The CDK app that provisions wa-gateway per environment (see docs/deploy.md)."""
