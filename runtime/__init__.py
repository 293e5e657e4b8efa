"""The Prefect runtime: task runners and device placement, the temporary local API server."""
