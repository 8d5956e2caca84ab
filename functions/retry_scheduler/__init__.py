"""The retry scheduler Lambda: every minute, moves due long-delay retries from Redis back to the queue."""
