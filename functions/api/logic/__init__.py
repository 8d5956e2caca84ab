"""What the routes do: workspace-scoped reads and writes through `shared.store`, raising domain errors."""
