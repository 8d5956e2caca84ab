"""Cleanup: an EventBridge-scheduled Lambda that keeps stale, disconnected and duplicate sessions from piling up."""
