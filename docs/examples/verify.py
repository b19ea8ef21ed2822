#!/usr/bin/env python3
"""Checks a Portcullis identity assertion as an upstream service should (docs/upstreams.md).

Needs PyJWT 2.6 or later with cryptography (Debian: python3-jwt python3-cryptography;
pip: "pyjwt[crypto]"):

    JWKS_URL=http://gateway:8080/.well-known/jwks.json AUDIENCE=http://orders.internal:3000 \\
        python3 verify.py TOKEN

It prints the claims as JSON, or why the assertion was refused (exit 1; exit 2 when the JWKS
cannot be had). In a service, import verify_assertion and call it on every request.
"""
import json
import os
import sys
import threading
import time

import jwt

JWKS_URL = os.environ["JWKS_URL"]
AUDIENCE = os.environ["AUDIENCE"]  # the route's audience: by default the upstream's origin
ISSUER = os.environ.get("ISSUER", "portcullis")  # the gateway's auth.issuer
HEADER = "X-Portcullis-Assertion"
TYP = "portcullis-assertion+jwt"  # an access token says "JWT": it must never pass for an assertion
# The algorithm follows from the gateway's key type, never from the token: no HS256, no none.
ALGORITHM_OF_KEY_TYPE = {"EC": "ES256", "OKP": "EdDSA", "RSA": "RS256"}
REQUIRED = ["iss", "aud", "sub", "sid", "roles", "iat", "exp"]

# One client per process. It keeps the set for `lifespan` seconds: no longer than the JWKS's
# Cache-Control max-age (300 from Portcullis with static keys).
_jwks = jwt.PyJWKClient(JWKS_URL, lifespan=300)
_refetch_lock = threading.Lock()
_refetched_at = float("-inf")


def _signing_key(kid):
    global _refetched_at
    keys = {key.key_id: key for key in _jwks.get_signing_keys()}
    if kid not in keys:
        # A key just rotated in: fetch the set again, but at most every 5 s, so that forged
        # tokens with made-up kids cannot make this service hammer the gateway.
        with _refetch_lock:
            if time.monotonic() - _refetched_at >= 5:
                _refetched_at = time.monotonic()
                keys = {key.key_id: key for key in _jwks.get_signing_keys(refresh=True)}
    if kid not in keys:
        raise jwt.InvalidTokenError(f"no key {kid!r} in the gateway's JWKS")
    return keys[kid]


def verify_assertion(token):
    """The claims of a valid assertion; raises jwt.PyJWTError otherwise (jwt.PyJWKClientError: JWKS unavailable)."""
    header = jwt.get_unverified_header(token)  # its signature is checked below
    if header.get("typ") != TYP:
        raise jwt.InvalidTokenError(f"typ is {header.get('typ')!r}, not {TYP!r}")
    key = _signing_key(header.get("kid"))
    algorithm = ALGORITHM_OF_KEY_TYPE.get(key.key_type)
    if algorithm is None:
        raise jwt.InvalidAlgorithmError(f"a {key.key_type} key cannot be checked with a public key set")
    return jwt.decode(
        token,
        key.key,
        algorithms=[algorithm],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=5,
        options={"require": REQUIRED},
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: verify.py TOKEN (with JWKS_URL and AUDIENCE set)")
    try:
        claims = verify_assertion(sys.argv[1])
    except jwt.PyJWKClientError as err:
        print(f"JWKS: {err}", file=sys.stderr)
        sys.exit(2)
    except jwt.PyJWTError as err:
        print(f"refused: {err}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(claims))
