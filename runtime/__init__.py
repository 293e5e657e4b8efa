"""The Prefect runtime: the task runners (thread, Dask, Ray) and the temporary local API server."""
