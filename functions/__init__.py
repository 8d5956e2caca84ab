"""One package per Lambda function: a thin handler over its logic."""
