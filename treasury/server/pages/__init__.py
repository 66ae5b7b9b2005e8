"""The signing page of `treasury serve`: HTML views of the configured treasuries (routes), built from the library (views)."""
