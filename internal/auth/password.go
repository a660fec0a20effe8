package auth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// params follow OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane):
// about 20 ms a hash on one core, which keeps sign-in snappy and guessing slow.
var params = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// HashPassword returns an argon2id hash in PHC string form.
func HashPassword(password string) (string, error) {
	h, err := argon2id.CreateHash(password, params)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether password matches hash, in constant time.
func CheckPassword(hash, password string) bool {
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return err == nil && ok
}

var (
	dummyOnce sync.Once
	dummy     string
)

// burnPasswordCheck costs what a real check costs, so an unknown email takes
// as long to refuse as a wrong password and response times reveal no accounts.
func burnPasswordCheck(password string) {
	dummyOnce.Do(func() { dummy, _ = HashPassword("konstruct-timing-equaliser") })
	CheckPassword(dummy, password)
}

// Password length limits. The upper bound stops hashing megabyte "passwords".
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// common holds passwords that pass the length rule yet are guessed first.
var common = map[string]bool{
	"password1234": true, "123456789012": true, "qwertyuiopas": true, "passwordpassword": true,
	"iloveyou1234": true, "letmeinplease": true, "administrator": true, "changeme1234": true,
	"welcome12345": true, "aaaaaaaaaaaa": true, "111111111111": true, "konstruct123": true,
	"konstruct1234": true, "password123!": true, "qwerty123456": true, "abc123456789": true,
}

// ErrWeakPassword wraps every strength failure; its message says what to fix.
var ErrWeakPassword = errors.New("weak password")

// ValidatePassword checks a new password's strength. email, when given, must
// not be part of it.
func ValidatePassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Errorf("%w: use at most %d characters", ErrWeakPassword, MaxPasswordLen)
	case common[strings.ToLower(password)]:
		return fmt.Errorf("%w: this password is among the most commonly used; choose another", ErrWeakPassword)
	}
	var kinds, distinct = 0, map[rune]bool{}
	var lower, upper, digit, other bool
	for _, r := range password {
		distinct[r] = true
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			kinds++
		}
	}
	// A long passphrase of lower-case words is fine; a short one needs variety.
	if len(distinct) < 6 || (kinds < 2 && n < 16) {
		return fmt.Errorf("%w: mix letters with digits or symbols, or use a longer passphrase (16+ characters)", ErrWeakPassword)
	}
	if local, _, ok := strings.Cut(strings.ToLower(email), "@"); ok && len(local) >= 4 &&
		strings.Contains(strings.ToLower(password), local) {
		return fmt.Errorf("%w: do not include your email address", ErrWeakPassword)
	}
	return nil
}
