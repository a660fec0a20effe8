package accounts

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

// notFound names a missing row for the client; other errors pass through.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound(what).Wrap(err)
	}
	return err
}

// Field limits; the database checks the same bounds.
const (
	MaxEmail      = 254
	MaxName       = 200
	MaxTenantName = 200
)

// NormaliseEmail checks a plain address (ada@example.com, no display name)
// and lower-cases it. The message says what is wrong, for the form.
func NormaliseEmail(raw string) (string, string) {
	email := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case email == "":
		return "", "is required"
	case utf8.RuneCountInString(email) > MaxEmail:
		return "", fmt.Sprintf("must be at most %d characters", MaxEmail)
	}
	a, err := netmail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", "must be an email address such as ada@example.com"
	}
	return email, ""
}

// NormaliseText trims a one-line text value and checks its length and
// characters. required makes an empty value an error.
func NormaliseText(raw string, max int, required bool) (string, string) {
	v := strings.TrimSpace(raw)
	n := utf8.RuneCountInString(v)
	switch {
	case required && n == 0:
		return "", "is required"
	case n > max:
		return "", fmt.Sprintf("must be at most %d characters (got %d)", max, n)
	case !utf8.ValidString(v):
		return "", "contains invalid characters"
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "", "must be a single line without control characters"
		}
	}
	return v, ""
}

// TenantRoles are the roles a tenant's members can hold.
var TenantRoles = []string{store.RoleCustomerAdmin, store.RoleCustomerOperator}

// ValidTenantRole reports whether role is one a tenant member can hold.
func ValidTenantRole(role string) bool {
	return role == store.RoleCustomerAdmin || role == store.RoleCustomerOperator
}

// RoleLabel names a role for people.
func RoleLabel(role string) string {
	switch role {
	case store.RolePlatformAdmin:
		return "Platform admin"
	case store.RoleCustomerAdmin:
		return "Admin"
	case store.RoleCustomerOperator:
		return "Operator"
	}
	return role
}
