"""Bot detection: is this User-Agent a known crawler?

Room: routing (PURE). One regular expression, compiled once at import, matched against the
User-Agent of requests that reach the tenant stage (reference section 11).

Invariants:
- an empty User-Agent is NOT a bot (health probes and scripts often send none);
- generic HTTP clients (curl, wget, python-requests, Go-http-client) are NOT bots: they are
  used by operators and integrations; only self-declared crawlers are matched;
- matching is case-insensitive substring search; no per-request compile; results are
  memoised per User-Agent string (a pure function, bounded memo).

Must not touch: I/O of any kind, the environment, mutable module state.
"""

from __future__ import annotations

import functools
import re

from navigator.config.runtime import BotDetection, Tenant

# Self-declared crawlers, indexers, SEO/AI scrapers and link-preview fetchers.
KNOWN_BOT_TOKENS: tuple[str, ...] = (
    "googlebot", "google-inspectiontool", "googleother", "adsbot-google", "mediapartners-google",
    "bingbot", "bingpreview", "msnbot", "adidxbot", "slurp", "duckduckbot", "baiduspider",
    "yandexbot", "yandeximages", "sogou", "exabot", "seznambot", "naver", "yeti/",
    "applebot", "petalbot", "qwantify", "mojeekbot", "ia_archiver", "archive.org_bot",
    "facebookexternalhit", "facebot", "meta-externalagent", "twitterbot", "linkedinbot",
    "pinterestbot", "slackbot", "discordbot", "telegrambot", "whatsapp", "skypeuripreview",
    "embedly", "redditbot", "semrushbot", "ahrefsbot", "mj12bot", "dotbot", "rogerbot",
    "blexbot", "dataforseobot", "serpstatbot", "screaming frog", "sitebulb", "barkrowler",
    "bytespider", "gptbot", "chatgpt-user", "oai-searchbot", "claudebot", "claude-web",
    "anthropic-ai", "ccbot", "amazonbot", "perplexitybot", "cohere-ai", "diffbot",
    "imagesiftbot", "omgili", "youbot", "timpibot", "ai2bot",
    "crawler", "spider", "headlesschrome",
)

# `compatible; Something/1.0; +http://example.com/bot.html` is the crawler convention.
# Matched against the lower-cased User-Agent: re.IGNORECASE over ~70 alternatives made one
# search cost ~85 us, as much as a whole proxied request; lower() first costs ~17 us, and
# the memo makes a repeated User-Agent (the common case) nearly free.
_BOT_RE = re.compile(
    "|".join(re.escape(token) for token in KNOWN_BOT_TOKENS) + r"|\+https?://|\bbot\b")


@functools.lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """True when the User-Agent names a known crawler."""
    return bool(user_agent) and _BOT_RE.search(user_agent.lower()) is not None


def effective_bot_settings(tenant: Tenant, default: BotDetection) -> BotDetection:
    """The tenant's own setting beats the global one."""
    return tenant.bot_detection if tenant.bot_detection is not None else default


def blocks_tenant(settings: BotDetection, user_agent: str) -> bool:
    """Should this request be refused at the tenant stage?

    `reject` and `static-only` both block the tenant (static/try_files ran earlier);
    `ignore` lets everything through.
    """
    return settings.enabled and settings.action != "ignore" and is_bot(user_agent)
