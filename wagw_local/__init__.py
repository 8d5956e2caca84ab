"""Running the system on one machine: real Redis and LocalStack processes, and in-process Lambda runners."""
