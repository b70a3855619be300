"""Operating the server: logging setup and non-blocking writers, the access log, metrics and
their listener, `navigator status`."""
