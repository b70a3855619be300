"""Talking to backends: the upstream connection and keep-alive pool, one relayed exchange
(and the websocket tunnel after a 101), the internal-DNS resolver for other machines."""
