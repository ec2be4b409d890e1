"""All settings come from the environment (see .env.example); the defaults are the embedded `make run` mode."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DJANGO_ENV = env("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env("SECRET_KEY", default=None if PRODUCTION else _DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("DJANGO_ENV=production needs SECRET_KEY: 50 or more random characters")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS (comma-separated host names)")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    "relay",
]

MIDDLEWARE = [
    "hostingmail.middleware.RealClientIpMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the browser's Accept-Language (or the language cookie) until a signed-in user's own setting.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # A signed-in user's own language setting, over the browser's (needs request.user: after authentication).
    "accounts.languages.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.PanelSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "hostingmail.middleware.HtmxLoginRedirectMiddleware",
]

ROOT_URLCONF = "hostingmail.urls"
WSGI_APPLICATION = "hostingmail.wsgi.application"
ASGI_APPLICATION = "hostingmail.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "accounts.context_processors.branding",
            ],
            # Tag libraries that live with the pages they serve rather than in an app's templatetags package.
            "libraries": {"relay_charts": "relay.panel.templatetags.relay_charts"},
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hostingmail.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so quota check-and-count never deadlocks
    # on a lock upgrade; WAL lets the panel read while the relay writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "accounts.backends.MailboxBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Panel sign-in throttling (accounts.PanelLoginFailure) and two-factor sign-in.
PANEL_LOGIN_MAX_FAILURES = env.int("PANEL_LOGIN_MAX_FAILURES", default=5)
PANEL_LOGIN_MAX_FAILURES_PER_IP = env.int("PANEL_LOGIN_MAX_FAILURES_PER_IP", default=20)
PANEL_LOGIN_FAILURE_WINDOW = env.int("PANEL_LOGIN_FAILURE_WINDOW", default=900)
PANEL_LOGIN_CODE_SECONDS = env.int("PANEL_LOGIN_CODE_SECONDS", default=300)
PANEL_SESSION_REFRESH_SECONDS = env.int("PANEL_SESSION_REFRESH_SECONDS", default=60)
# A panel session with no request for this long ends; the next request goes to the sign-in page. Support staff,
# who can change any account, get a shorter time.
PANEL_SESSION_IDLE_SECONDS = env.int("PANEL_SESSION_IDLE_SECONDS", default=12 * 3600)
PANEL_SUPPORT_SESSION_IDLE_SECONDS = env.int("PANEL_SUPPORT_SESSION_IDLE_SECONDS", default=3600)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default=env("PANEL_TITLE", default="hostingmail"))
# django-otp's own throttle locks a device for 2^(n-1) seconds after each wrong code, so a typo followed at once by
# the right code was refused. Wrong codes count as failed sign-ins instead (PANEL_LOGIN_MAX_FAILURES, per username
# and address, accounts/services/security.py), and a code is only asked for after the right password.
OTP_TOTP_THROTTLE_FACTOR = env.int("OTP_TOTP_THROTTLE_FACTOR", default=0)
OTP_STATIC_THROTTLE_FACTOR = env.int("OTP_STATIC_THROTTLE_FACTOR", default=0)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Mailbox passwords: Argon2id in Dovecot's {ARGON2ID} scheme. Dovecot (and the relay) read the cost from the hash
# itself, so a change only affects new hashes. 46 MiB, one pass: OWASP's first listed setting, 1.2x the work of its
# minimum (19 MiB, t=2) with 2.4x the memory per guess, ~34 ms CPU a verification here against ~150 ms for the
# earlier 64 MiB, t=3 (bench/argon2_params.py; README "SMTP login secrets").
MAIL_HASH_TIME_COST = env.int("MAIL_HASH_TIME_COST", default=1)
MAIL_HASH_MEMORY_KIB = env.int("MAIL_HASH_MEMORY_KIB", default=46 * 1024)
MAIL_HASH_PARALLELISM = env.int("MAIL_HASH_PARALLELISM", default=1)
MAILBOX_PASSWORD_MIN_LENGTH = env.int("MAILBOX_PASSWORD_MIN_LENGTH", default=10)

LANGUAGE_CODE = "en"
# The panel ships in these languages (locale/<code>/LC_MESSAGES/django.po; the compiled .mo files are committed so
# that `make run` needs no gettext). SMTP replies, DSNs and the API's field names stay English: they are protocol.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles, images and fonts from the panel's own origin only — no
# inline script or style attribute, no eval, no CDN — so injected markup cannot run even if escaping ever failed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Reverse proxies whose X-Forwarded-For is believed (addresses or networks); see hostingmail/middleware.py.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Public names the client settings pages and autoconfig hand out.
PANEL_TITLE = env("PANEL_TITLE", default="hostingmail")
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@example.net")
SUPPORT_URL = env("SUPPORT_URL", default="")
RELAY_HOSTNAME = env("RELAY_HOSTNAME", default="localhost")
# The panel's own mail (password resets) goes through the product's outbound queue, from the system sender.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="relay.outbox.QueueEmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default=f"{PANEL_TITLE} <no-reply@{RELAY_HOSTNAME}>")
# How long a password-reset link works (Django's token machinery; a used link stops working at once).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
RELAY_PUBLIC_SUBMISSION_PORT = env.int("RELAY_PUBLIC_SUBMISSION_PORT", default=2587 if not PRODUCTION else 587)
RELAY_PUBLIC_SMTPS_PORT = env.int("RELAY_PUBLIC_SMTPS_PORT", default=2465 if not PRODUCTION else 465)
IMAP_HOSTNAME = env("IMAP_HOSTNAME", default=RELAY_HOSTNAME)
IMAP_PORT = env.int("IMAP_PORT", default=993)  # Dovecot's implicit-TLS IMAP, shown to clients
# The panel's public name, where customers point autoconfig.<domain> and autodiscover.<domain> (served over HTTPS).
AUTOCONFIG_HOST = env("AUTOCONFIG_HOST", default=RELAY_HOSTNAME)
# What customers publish: MX target and the SPF include for the provider's relays.
MAIL_MX_HOST = env("MAIL_MX_HOST", default="mx.example.net")
SPF_INCLUDE = env("SPF_INCLUDE", default="_spf.example.net")
DKIM_SELECTOR = env("DKIM_SELECTOR", default="hm1")
DKIM_KEY_BITS = env.int("DKIM_KEY_BITS", default=2048)
# DKIM private keys are stored encrypted under this Fernet key (accounts/dkim_keys.py); comma-separated to rotate:
# the first encrypts, all decrypt. Empty: derived from SECRET_KEY (then changing SECRET_KEY loses the keys).
DKIM_KEY_ENCRYPTION_KEY = env.list("DKIM_KEY_ENCRYPTION_KEY", default=[])
VERIFICATION_TXT_PREFIX = env("VERIFICATION_TXT_PREFIX", default="hostingmail-verification=")
# Forwarding: the SRS envelope sender's HMAC key (default: derived from SECRET_KEY), older keys still accepted for
# bounces while they age out, and how long a bounce to an SRS address is accepted.
SRS_SECRET = env("SRS_SECRET", default="") or (f"srs:{SECRET_KEY}" if SECRET_KEY else "")
SRS_PREVIOUS_SECRETS = env.list("SRS_PREVIOUS_SECRETS", default=[])
SRS_MAX_AGE_DAYS = env.int("SRS_MAX_AGE_DAYS", default=21)
# The authserv-id of our MX's Authentication-Results (RFC 8601), which a forward's ARC seal carries on.
ARC_AUTHSERV_ID = env("ARC_AUTHSERV_ID", default=RELAY_HOSTNAME)

# The REST API (hostingmail/api). API keys are stored as HMAC-SHA-256 under this key (default: derived from
# SECRET_KEY; changing it invalidates every key). Each key may make API_RATE_LIMIT requests (DRF's "N/second|
# minute|hour|day"); an Idempotency-Key is remembered for API_IDEMPOTENCY_HOURS.
API_KEY_HASH_SECRET = env("API_KEY_HASH_SECRET", default="") or (f"api-key:{SECRET_KEY}" if SECRET_KEY else "")
# SMTP credential secrets are ours (192 random bits): stored as HMAC-SHA-256 under this key (default: derived from
# SECRET_KEY), not Argon2. A stored hash names its key, so the earlier keys listed in the second setting still
# verify, and a credential is converted to the first key at its next login.
SMTP_CREDENTIAL_HASH_SECRET = (env("SMTP_CREDENTIAL_HASH_SECRET", default="")
                               or (f"smtp-credential:{SECRET_KEY}" if SECRET_KEY else ""))
SMTP_CREDENTIAL_HASH_PREVIOUS_SECRETS = env.list("SMTP_CREDENTIAL_HASH_PREVIOUS_SECRETS", default=[])
# The relay's verified-login cache (relay.models.VerifiedLogin) holds an HMAC under this key of a mailbox's stored
# hash and the password that verified against it (default: derived from SECRET_KEY). Changing it empties the cache.
RELAY_LOGIN_CACHE_SECRET = (env("RELAY_LOGIN_CACHE_SECRET", default="")
                            or (f"relay-login-cache:{SECRET_KEY}" if SECRET_KEY else ""))
API_RATE_LIMIT = env("API_RATE_LIMIT", default="600/minute")
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)
# A one-time sign-in link (POST /api/v1/customers/{id}/login-links) works for this many seconds, once.
LOGIN_LINK_SECONDS = env.int("LOGIN_LINK_SECONDS", default=300)
# Django's cache: the API's per-key request counts (and the panel's chart cache) live here. The default is per
# process; with several panel/API processes point them all at one Redis (redis://host:6379/1) so that a key's
# budget is one budget whichever process answers.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Webhooks: a request's timeout, the delays between attempts (the last repeats) for WEBHOOK_RETRY_SECONDS after the
# event, and an endpoint disabled after WEBHOOK_DISABLE_AFTER_FAILURES failures in a row spanning at least
# WEBHOOK_DISABLE_AFTER_SECONDS. Private and loopback receivers only with WEBHOOK_ALLOW_PRIVATE (tests).
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
# A worker's claim on a delivery, taken before the request; another worker may send the event once it expires (the
# worker died). Longer than a request can take: connecting, sending and reading may each take WEBHOOK_TIMEOUT.
WEBHOOK_LEASE_SECONDS = env.float("WEBHOOK_LEASE_SECONDS", default=WEBHOOK_TIMEOUT * 3 + 30)
WEBHOOK_RETRY_SCHEDULE = env.list("WEBHOOK_RETRY_SCHEDULE", cast=int, default=[60, 300, 900, 1800, 3600])
WEBHOOK_RETRY_SECONDS = env.int("WEBHOOK_RETRY_SECONDS", default=24 * 3600)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
WEBHOOK_DISABLE_AFTER_SECONDS = env.int("WEBHOOK_DISABLE_AFTER_SECONDS", default=12 * 3600)
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
# Delivered and failed webhook deliveries, and the events they carried, are deleted after this many days.
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["hostingmail.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["hostingmail.api.permissions.ApiKeyPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["hostingmail.api.throttling.ApiKeyThrottle"],
    "DEFAULT_PAGINATION_CLASS": "hostingmail.api.pagination.Pagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "hostingmail.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "hostingmail.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hostingmail API",
    "DESCRIPTION": "Provision customers, domains, mailboxes, SMTP credentials and aliases; read the message log. "
                   "Authenticate with `Authorization: Bearer <API key>` (panel: API keys).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "accounts.models.Status",
        "DomainStatusEnum": "accounts.models.Domain.DomainStatus",
        "MessageStateEnum": "relay.models.QueuedMessage.State",
        "RecipientStateEnum": "relay.models.Recipient.State",
    },
}

# DNS resolver used for verification, record checks and MX routing; tests point it at a loopback server.
DNS_NAMESERVERS = env.list("DNS_NAMESERVERS", default=[])
DNS_PORT = env.int("DNS_PORT", default=53)
DNS_TIMEOUT = env.float("DNS_TIMEOUT", default=5.0)
# How often beat re-checks every domain's DNS records (and pending domains' proofs); the domain page names the next.
DNS_RECHECK_SECONDS = env.int("DNS_RECHECK_SECONDS", default=3600)

# Relay (manage.py runrelay).
RELAY_SUBMISSION_LISTEN = env("RELAY_SUBMISSION_LISTEN", default="0.0.0.0:587" if PRODUCTION else "127.0.0.1:2587")
RELAY_SMTPS_LISTEN = env("RELAY_SMTPS_LISTEN", default="0.0.0.0:465" if PRODUCTION else "127.0.0.1:2465")
RELAY_TLS_CERT = env("RELAY_TLS_CERT", default=str(VAR_DIR / "tls" / "relay-dev.crt"))
RELAY_TLS_KEY = env("RELAY_TLS_KEY", default=str(VAR_DIR / "tls" / "relay-dev.key"))
RELAY_MAX_RECIPIENTS = env.int("RELAY_MAX_RECIPIENTS", default=100)
RELAY_MAX_MESSAGE_SIZE = env.int("RELAY_MAX_MESSAGE_SIZE", default=25 * 1024 * 1024)
RELAY_AUTH_MAX_FAILURES = env.int("RELAY_AUTH_MAX_FAILURES", default=10)
RELAY_AUTH_FAILURE_WINDOW = env.int("RELAY_AUTH_FAILURE_WINDOW", default=900)
RELAY_AUTH_LOCKOUT_SECONDS = env.int("RELAY_AUTH_LOCKOUT_SECONDS", default=900)
# Each failed AUTH is answered after a delay doubling from BASE with the failures counted, up to MAX seconds.
RELAY_AUTH_DELAY_BASE = env.float("RELAY_AUTH_DELAY_BASE", default=0.5)
RELAY_AUTH_DELAY_MAX = env.float("RELAY_AUTH_DELAY_MAX", default=8.0)
# Argon2 worker processes per relay process (0: the machine's cores shared among the relay processes), and how many
# slow hashes (cold mailbox logins, unknown users) one relay process lets run or wait: an AUTH beyond that gets
# 454 4.7.0 at once. The last one waits about QUEUE x a verification / the process's workers: 64 x ~37 ms on one
# worker (2 processes on 2 cores) is 2.4 s on an idle machine.
RELAY_HASH_WORKERS = env.int("RELAY_HASH_WORKERS", default=0)
# Write lanes (one database writer each, batching the messages that arrive while it commits) per relay process; 0:
# two shared among the relay processes (`runrelay --processes N` gives each its share, at least one): a lane's
# batches are as full as the load it gets, so two processes with two lanes each committed half-size batches, at
# more interpreter time a message than one process (bench/README.md).
RELAY_WRITE_LANES = env.int("RELAY_WRITE_LANES", default=0)
RELAY_AUTH_HASH_QUEUE = env.int("RELAY_AUTH_HASH_QUEUE", default=64)
RELAY_PROXY_PROTOCOL_FROM = env.list("RELAY_PROXY_PROTOCOL_FROM", default=[])
# Per client address and relay process, as Postfix's anvil: connections open at once (its
# smtpd_client_connection_count_limit) and begun per minute; 0 turns a limit off. EXEMPT: networks never refused.
RELAY_MAX_CONNECTIONS_PER_CLIENT = env.int("RELAY_MAX_CONNECTIONS_PER_CLIENT", default=50)
RELAY_CONNECTION_RATE_PER_CLIENT = env.int("RELAY_CONNECTION_RATE_PER_CLIENT", default=600)
RELAY_CONNECTION_LIMIT_EXEMPT = env.list("RELAY_CONNECTION_LIMIT_EXEMPT", default=[])
# NOOP, RSET, VRFY, HELP, HELO/EHLO a session may send between accepted messages (Postfix's smtpd_junk_command_limit).
RELAY_MAX_JUNK_COMMANDS = env.int("RELAY_MAX_JUNK_COMMANDS", default=100)
# Seconds a TLS handshake (STARTTLS or port 465) may take.
RELAY_TLS_HANDSHAKE_TIMEOUT = env.float("RELAY_TLS_HANDSHAKE_TIMEOUT", default=10.0)
# Octets of a message's content kept in memory while it is received; the rest goes to a temporary file.
RELAY_SPOOL_THRESHOLD = env.int("RELAY_SPOOL_THRESHOLD", default=1024 * 1024)

# MX (manage.py runmx): inbound mail for the hosted domains, port 25.
MX_LISTEN = env("MX_LISTEN", default="0.0.0.0:25" if PRODUCTION else "127.0.0.1:2525")
# The authserv-id of the Authentication-Results header the MX adds (RFC 8601 2.5); one arriving from outside
# with this id is removed first.
MX_AUTHSERV_ID = env("MX_AUTHSERV_ID", default=MAIL_MX_HOST)
MX_MAX_RECIPIENTS = env.int("MX_MAX_RECIPIENTS", default=100)
# The provider's own hosted domain: the bare RCPT TO:<postmaster> (RFC 5321 4.5.1) is its postmaster.
MX_POSTMASTER_DOMAIN = env("MX_POSTMASTER_DOMAIN", default="") or RELAY_HOSTNAME
# Seconds a deliverable recipient is remembered by an MX process (0: look every RCPT up in the database). A change to
# where mail goes (a suspension, a deletion, an alias) is taken at once all the same: see accounts.models.RouteGeneration.
MX_RECIPIENT_CACHE_SECONDS = env.float("MX_RECIPIENT_CACHE_SECONDS", default=300.0)
# A message that already crossed this many Received headers is looping (RFC 5321 6.3).
MX_MAX_RECEIVED = env.int("MX_MAX_RECEIVED", default=30)
# DMARC p=reject with failed alignment: refused at the end of DATA (true; a domain relaxed to "mark", its
# dmarc_reject_policy, still gets it delivered and marked) or delivered and marked as spam for every domain (false).
MX_DMARC_REJECT = env.bool("MX_DMARC_REJECT", default=True)
# rspamd's normal worker (its HTTP protocol, POST /checkv2) checks every inbound message at the end of DATA before the
# commit; empty: no spam checking. RSPAMD_FAIL says what rspamd down or slower than RSPAMD_TIMEOUT means: "accept"
# (delivered, marked "not scanned") or "tempfail" (451 4.7.1, the sender retries). RSPAMD_CONTROLLER_URL and
# RSPAMD_PASSWORD: the controller worker that learns a released message as ham (POST /learnham).
RSPAMD_URL = env("RSPAMD_URL", default="")
RSPAMD_TIMEOUT = env.float("RSPAMD_TIMEOUT", default=10.0)
RSPAMD_FAIL = env("RSPAMD_FAIL", default="accept")
RSPAMD_CONTROLLER_URL = env("RSPAMD_CONTROLLER_URL", default="")
RSPAMD_PASSWORD = env("RSPAMD_PASSWORD", default="")
if RSPAMD_FAIL not in ("accept", "tempfail"):
    raise ImproperlyConfigured("RSPAMD_FAIL must be accept or tempfail")
# The spam scores a customer may choose for marking and rejecting (support narrows them per customer).
SPAM_SCORE_MIN = env.float("SPAM_SCORE_MIN", default=2.0)
SPAM_SCORE_MAX = env.float("SPAM_SCORE_MAX", default=50.0)
# Held (quarantined) messages are deleted this many days after they arrived; digest release links last as long.
QUARANTINE_RETENTION_DAYS = env.int("QUARANTINE_RETENTION_DAYS", default=30)
QUARANTINE_LINK_DAYS = env.int("QUARANTINE_LINK_DAYS", default=7)
# The panel's address as the quarantine digest's links spell it.
PANEL_URL = env("PANEL_URL", default="http://localhost:8000")
# DNS blocklists of the connecting address, asked at the first RCPT (relay.inbound.dnsbl), e.g.
# "zen.spamhaus.org,bl.spamcop.net": a listed client gets 554 5.7.1 naming the list. None by default (off).
MX_DNSBL_ZONES = env.list("MX_DNSBL_ZONES", default=[])
# Greylisting, for the domains that turn it on (relay.inbound.greylist): seconds a new (client /24 or /64, sender,
# recipient) waits before its retry is taken; seconds that first retry may take; days a triplet that passed is kept.
MX_GREYLIST_DELAY = env.int("MX_GREYLIST_DELAY", default=300)
MX_GREYLIST_RETRY_WINDOW = env.int("MX_GREYLIST_RETRY_WINDOW", default=2 * 86400)
MX_GREYLIST_EXPIRE_DAYS = env.int("MX_GREYLIST_EXPIRE_DAYS", default=35)
# Dovecot's LMTP service for local delivery: a unix socket path or HOST:PORT.
LMTP_URL = env("LMTP_URL", default="/var/run/dovecot/lmtp")
LMTP_TIMEOUT = env.float("LMTP_TIMEOUT", default=60.0)
# Seconds a worker thread keeps its LMTP session with Dovecot for its next delivery (0: a session per message).
LMTP_REUSE_SECONDS = env.float("LMTP_REUSE_SECONDS", default=30.0)

# Delivery.
DELIVERY_PORT = env.int("DELIVERY_PORT", default=25)
DELIVERY_ALLOW_PRIVATE = env.bool("DELIVERY_ALLOW_PRIVATE", default=False)
DELIVERY_HELO_NAME = env("DELIVERY_HELO_NAME", default=RELAY_HOSTNAME)
DELIVERY_RETRY_SCHEDULE = env.list("DELIVERY_RETRY_SCHEDULE", cast=int, default=[300, 600, 1200, 1800, 3600])
DELIVERY_GIVE_UP_SECONDS = env.int("DELIVERY_GIVE_UP_SECONDS", default=5 * 24 * 3600)
DELIVERY_WARN_AFTER_SECONDS = env.int("DELIVERY_WARN_AFTER_SECONDS", default=4 * 3600)
DELIVERY_LEASE_SECONDS = env.int("DELIVERY_LEASE_SECONDS", default=600)
DELIVERY_CONNECT_TIMEOUT = env.float("DELIVERY_CONNECT_TIMEOUT", default=30.0)
DELIVERY_REUSE_SECONDS = env.float("DELIVERY_REUSE_SECONDS", default=30.0)
DELIVERY_SWEEP_SECONDS = env.float("DELIVERY_SWEEP_SECONDS", default=60.0)
# Messages named by one worker task (accepted together, or due together), delivered one after the other; a task
# that has run DELIVERY_TASK_SECONDS hands the ones it has not started to a new task.
DELIVERY_TASK_MESSAGES = env.int("DELIVERY_TASK_MESSAGES", default=10)
# Seconds a relay process holds a committed message's notice to the workers for others to join it (up to a task's
# worth): fewer, fuller publishes, each costing the relay about what accepting two messages does (bench/README.md).
RELAY_HANDOFF_LINGER = env.float("RELAY_HANDOFF_LINGER", default=0.1)
DELIVERY_TASK_SECONDS = env.float("DELIVERY_TASK_SECONDS", default=5.0)
SMARTHOST_URL = env("SMARTHOST_URL", default="")
MESSAGE_RETENTION_DAYS = env.int("MESSAGE_RETENTION_DAYS", default=30)

# Celery: the embedded default is a filesystem broker under var/, so `make run` needs no broker server.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

# Prometheus scrapes /metrics only from these addresses or networks.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# "json": one JSON object per line (hostingmail/logjson.py); secrets are scrubbed from every line either way.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "hostingmail.logjson.JsonFormatter"}},
    "filters": {"scrub_secrets": {"()": "hostingmail.logjson.ScrubSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["scrub_secrets"],
                             "formatter": "json" if LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
