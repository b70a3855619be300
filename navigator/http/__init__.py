"""The client side of HTTP/1.1: wire rules (framing, hop-by-hop, heads), the request reader,
the client connection and its narrow interface, flow control, errors and the one
failure-to-status map. Everything that moves bytes from and to the client lives here."""
