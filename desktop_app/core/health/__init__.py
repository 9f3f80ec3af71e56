"""Provider health: probes now; metrics, rollups and alerts build on them."""
