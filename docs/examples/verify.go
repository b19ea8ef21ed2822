// Command verify checks a Portcullis identity assertion as an upstream service should
// (docs/upstreams.md), with github.com/golang-jwt/jwt/v5 and github.com/MicahParks/keyfunc/v3
// (v3.4 or later; Go 1.21 or later):
//
//	go mod init orders && go mod tidy
//	JWKS_URL=http://gateway:8080/.well-known/jwks.json AUDIENCE=http://orders.internal:3000 go run . TOKEN
//
// It prints the claims as JSON, or why the assertion was refused (exit 1). In a service, make
// one Verifier at start-up and wrap your handlers with its Middleware.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// An access token says "JWT": it must never pass for an assertion.
const assertionTyp = "portcullis-assertion+jwt"

// Assertion is what the gateway says about the caller. Add fields for the custom claims you use.
type Assertion struct {
	jwt.RegisteredClaims
	SessionID string   `json:"sid"`
	Roles     []string `json:"roles"`
}

// Verifier keeps the gateway's JWKS for every request: make one per process.
type Verifier struct {
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
}

func NewVerifier(ctx context.Context, jwksURL, audience, issuer string) (*Verifier, error) {
	keys, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{jwksURL}, keyfunc.Override{
		// No longer than the JWKS's Cache-Control max-age (300 s from Portcullis with static keys).
		RefreshInterval: 5 * time.Minute,
		// A kid not in the set (a key just rotated in) fetches the set again, at most every 5 s.
		// A request waits at most 5 s for that turn; the bound covers the fetch itself too.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(5*time.Second), 1),
		RateLimitWaitMax:  5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256", "EdDSA", "RS256"}), // never HS256 or none
		jwt.WithAudience(audience),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
	)
	return &Verifier{keys: keys, parser: parser}, nil
}

// Verify returns the claims of a valid assertion.
func (v *Verifier) Verify(token string) (*Assertion, error) {
	var a Assertion
	_, err := v.parser.ParseWithClaims(token, &a, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != assertionTyp {
			return nil, fmt.Errorf("typ is %v, not %s", t.Header["typ"], assertionTyp)
		}
		return v.keys.Keyfunc(t)
	})
	if err != nil {
		return nil, err
	}
	if a.Subject == "" || a.SessionID == "" || a.IssuedAt == nil || a.Roles == nil {
		return nil, errors.New("sub, sid, iat and roles are required")
	}
	return &a, nil
}

type assertionKey struct{}

// Middleware refuses a request without a valid assertion: without one it did not come through the gateway.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("X-Portcullis-Assertion")
		if len(values) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		a, err := v.Verify(values[0])
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), assertionKey{}, a)))
	})
}

// AssertionFrom gives a handler behind Middleware the caller's assertion.
func AssertionFrom(ctx context.Context) *Assertion {
	a, _ := ctx.Value(assertionKey{}).(*Assertion)
	return a
}

func main() {
	issuer := os.Getenv("ISSUER")
	if issuer == "" {
		issuer = "portcullis"
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: verify TOKEN (with JWKS_URL and AUDIENCE set)")
		os.Exit(2)
	}
	v, err := NewVerifier(context.Background(), os.Getenv("JWKS_URL"), os.Getenv("AUDIENCE"), issuer)
	if err != nil {
		fmt.Fprintln(os.Stderr, "JWKS:", err)
		os.Exit(2)
	}
	a, err := v.Verify(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "refused:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(a)
	fmt.Println(string(out))
}
