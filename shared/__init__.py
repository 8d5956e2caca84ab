"""Code every wa-gateway entry point imports: settings, models, Redis keys and scripts, signing, throttle."""
