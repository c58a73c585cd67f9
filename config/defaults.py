"""Built-in defaults for phonein.

Every name here can be overridden by an environment variable with the ``PHONEIN_``
prefix (``PHONEIN_SMS_RATE=5`` sets ``SMS_RATE``); values are parsed as JSON where they
can be (``false``, ``5``, ``[1, 2]``) and kept as strings otherwise. See
``config/example.env`` for a documented production environment.
"""

# SQLAlchemy URL. None means a SQLite file in the instance folder.
DATABASE_URL = None

# PostgreSQL: seconds to wait for a new connection, and for any one statement (the server
# cancels it; a connection that does not answer at all is cut a second after that). A
# request that runs into either answers 503, and /healthz answers within 2 s regardless.
DATABASE_CONNECT_TIMEOUT = 5
DATABASE_STATEMENT_TIMEOUT = 15

# Session and CSRF secret. None means: generate one and keep it in the instance folder,
# which is allowed only for the embedded SQLite setup. PostgreSQL deployments and
# ENV = "production" refuse to start without a real one.
SECRET_KEY = None
ENV = "development"

# External base URL: links in pages and SMS, webhook URLs, Twilio signature checks.
PUBLIC_URL = "http://127.0.0.1:5000"

# Country for national-format numbers when neither the form's country nor the
# listener's timezone tells (ISO 3166 alpha-2).
DEFAULT_REGION = "GB"

# Where phonein texts and calls. SMS_COUNTRIES: ISO codes whose numbers may get texts and
# call-backs (comma list; None: every country). SMS_DENY_PREFIXES: E.164 ranges never
# texted or called, whatever they are: by default the non-geographic ranges that SMS
# pumping and toll fraud use and no listener needs (Inmarsat +870, universal personal
# numbers +878, global satellite and international networks +881, +882, +883, the UN's
# +888, international premium-rate +979 and shared-cost +808). Premium-rate, toll-free,
# shared-cost, UAN, pager, personal and VoIP numbers of every country are refused anyway.
SMS_COUNTRIES = None
SMS_DENY_PREFIXES = "+870,+878,+881,+882,+883,+888,+979,+808"

# Bearer token for GET /metrics (Prometheus). None: /metrics answers 404.
METRICS_TOKEN = None

# Flask-Limiter: limit on signup POSTs per client address.
SIGNUP_RATE_LIMIT = "20/minute"
# Password guesses per client address on the staff login.
LOGIN_RATE_LIMIT = "10/minute"
# Failed logins per staff account, from any address (the right password counts nothing).
LOGIN_ACCOUNT_RATE_LIMIT = "10/hour"
RATELIMIT_ENABLED = True
RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_HEADERS_ENABLED = True

# Session and remember cookies are Secure (sent over https only), HttpOnly and
# SameSite=Lax. None: Secure when ENV is "production" or PUBLIC_URL is https.
COOKIE_SECURE = None

# A staff session unused for this many minutes is logged out (the boards' polling counts
# as use). Logging out ends a user's sessions everywhere, server-side.
STAFF_IDLE_MINUTES = 120

# The private link is exchanged for a cookie that opens the listener's manage page for
# this many minutes, at an address without the token (/manage/mine).
MANAGE_COOKIE_MINUTES = 60

# Largest request body accepted, in bytes (413 above it).
MAX_CONTENT_LENGTH = 64 * 1024

# Trust this many proxies in front of the app for X-Forwarded-For/-Proto/-Host
# (werkzeug ProxyFix). 0 trusts none.
PROXY_COUNT = 0

# SMS. SMS_BACKEND: twilio, console or memory; None picks twilio when Twilio
# credentials are set, else console. SMS_RATE: most messages per second, all senders.
SMS_BACKEND = None
SMS_RATE = 1
# Base URL replacing https://api.twilio.com for every Twilio REST call (sandboxes, tests).
TWILIO_API_URL = None
# Sender threads per process (each waits for its rate slot, then for Twilio).
SENDER_THREADS = 8

# Voice. VOICE_BACKEND: twilio, console or memory; None picks twilio when Twilio
# credentials are set, else console (which logs what it would ask of Twilio).
VOICE_BACKEND = None
# The studio line phonein dials into the on-air conference when a forum goes live
# (E.164; unset: nobody is dialled). Outgoing calls show TWILIO_FROM_NUMBER.
VOICE_STUDIO_NUMBER = None
# Caller ID is identity only as far as the carrier vouches for it (STIR/SHAKEN). A call
# whose attestation failed is never greeted by name nor linked to a signup; with this
# True, neither is one without full attestation (A), which outside the US is most calls.
VOICE_REQUIRE_ATTESTATION = False
# Back-timing assumes calls of this length until the forum has finished calls of its own.
VOICE_DEFAULT_CALL_SECONDS = 240
# How many callers a forum's hold queue takes. Twilio creates queues for 100; phonein raises
# the limit to this (at most 5000) as the queue fills.
VOICE_QUEUE_MAX_SIZE = 1000

# Proof of the number. VERIFY: "sms" (a signup counts only once the listener enters the
# one-time code sent to the number) or "off" (see the README: off cannot hide that a
# number signed up). TWILIO_VERIFY_SERVICE_SID: the Twilio Verify service that sends and
# checks the codes (recommended); unset, phonein makes the codes and texts them through the
# outbox (SMS_BACKEND twilio), prints them (console) or keeps them (memory, tests).
# VERIFY_BACKEND: twilio, outbox, console or memory; None derives it as just said.
VERIFY = "sms"
TWILIO_VERIFY_SERVICE_SID = None
VERIFY_BACKEND = None
# How long a code phonein made itself is good for, and how many tries it takes (Twilio
# Verify applies its own: 10 minutes and 5 tries by default).
VERIFY_CODE_MINUTES = 10
VERIFY_MAX_ATTEMPTS = 5
# Codes to one number, whatever the forum: at most this many an hour and a day.
VERIFY_CODES_PER_HOUR = 5
VERIFY_CODES_PER_DAY = 10
# Codes to one number range (country code and first four national digits) that are not
# entered within 3 minutes: past this many in an hour, that range gets no more codes.
# A script working through sequential numbers stops here; real listeners enter theirs.
VERIFY_RANGE_UNPROVED_PER_HOUR = 10
# Texts and calls to numbers that have not proved themselves (codes; in off mode, links
# to a signup), all together, in any hour: past it new signups get a polite 429 and
# producers a banner. Texts to proved listeners are not counted and never slowed.
UNVERIFIED_SMS_PER_HOUR = 200
# A proof-of-work on the signup form and API (ALTCHA-style, self-hosted): "pow" or "off".
# A browser tries about CHALLENGE_MAX_NUMBER / 2 SHA-256 hashes (well under a second); a
# challenge is good for CHALLENGE_SECONDS, and each solution is accepted once.
CHALLENGE = "pow"
CHALLENGE_MAX_NUMBER = 20000
CHALLENGE_SECONDS = 600

# Scheduler: "embedded" runs it inside `phonein serve`; "off" leaves it to `phonein worker`.
SCHEDULER = "embedded"
TICK_SECONDS = 1
RECOVER_SECONDS = 5
LEASE_SECONDS = 5
# A sender that has not beaten for this long is dead: its claims are reconciled.
WORKER_DEAD_SECONDS = 5
# Reminder waves are written this long before they are due, so they leave on time.
WAVE_AHEAD_SECONDS = 5
# Quiet hours, in each listener's own zone ("HH:MM-HH:MM", or "off"): a reminder more than
# two hours before the show that would land inside them leaves at the end of the
# listener's evening instead; the last reminder before the show is never held back.
QUIET_HOURS = "22:00-08:00"
# The nightly purge erases personal data of forums closed longer ago (0 turns it off).
PURGE_AFTER_DAYS = 90

# How often the producer and presenter boards poll for changes, in milliseconds.
BOARD_POLL_MS = 1000

# The station's language (BCP 47, one phonein ships: en, fr, es, ar): forums that name no
# languages are offered in it, and pages of no one forum open in it unless the reader's
# browser asks for another shipped language.
DEFAULT_LANGUAGE = "en"

# Forum defaults.
DEFAULT_REMINDER_OFFSETS = [86400, 3600, 600]
DEFAULT_DURATION_MINUTES = 60
