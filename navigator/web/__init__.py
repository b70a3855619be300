"""Deciding and answering locally: the snapshot, routing to a Decision, the rule list
(redirects, rewrites, fly-replay), static files and their cache, auth, bot detection, and the
handlers that act on a Decision."""
