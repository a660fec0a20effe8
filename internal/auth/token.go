package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// TokenPrefix marks Konstruct API tokens, so leaked ones are easy to grep for.
const TokenPrefix = "kst_"

// NewToken returns a random bearer token and the hash to store.
func NewToken() (raw string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	raw = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return raw, HashToken(raw)
}

// HashToken hashes a token for storage and lookup. Tokens are 256 random bits,
// so a fast hash is enough: there is nothing to brute-force.
func HashToken(raw string) []byte {
	sum := sha256.Sum256([]byte(strings.TrimSpace(raw)))
	return sum[:]
}
