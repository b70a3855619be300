"""Built-in extras served without a tenant: CGI scripts, the pub/sub hub (cable) and its
websocket framing."""
