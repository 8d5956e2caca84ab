"""Session workers: the long-lived process that drives WhatsApp Web sessions (`python -m session_workers`)."""
