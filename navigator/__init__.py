"""navigator: a multi-tenant application server and reverse proxy for small web apps."""

__version__ = "0.1.0"
