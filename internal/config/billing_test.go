package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadBillingSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey}))
	require.NoError(t, err)
	require.Empty(t, c.StripePrices)
	require.Equal(t, 7*24*time.Hour, c.BillingGrace)

	c, err = Load(env(map[string]string{
		"KONSTRUCT_ENCRYPTION_KEY":        testKey,
		"KONSTRUCT_STRIPE_SECRET_KEY":     "sk_test_1",
		"KONSTRUCT_STRIPE_WEBHOOK_SECRET": "whsec_1",
		"KONSTRUCT_STRIPE_PRICE_STARTER":  "price_123",
		"KONSTRUCT_STRIPE_PRICE_PRO":      "price_456",
		"KONSTRUCT_BILLING_GRACE_PERIOD":  "72h",
	}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"starter": "price_123", "pro": "price_456"}, c.StripePrices)
	require.Equal(t, 72*time.Hour, c.BillingGrace)

	_, err = Load(env(map[string]string{
		"KONSTRUCT_ENCRYPTION_KEY":    testKey,
		"KONSTRUCT_STRIPE_SECRET_KEY": "sk_test_1",
		"KONSTRUCT_STRIPE_PRICE_PRO":  "prod_456",
	}))
	var cerr *Error
	require.True(t, errors.As(err, &cerr))
	all := strings.Join(cerr.Problems, "\n")
	require.Contains(t, all, "KONSTRUCT_STRIPE_WEBHOOK_SECRET: required with KONSTRUCT_STRIPE_SECRET_KEY")
	require.Contains(t, all, "KONSTRUCT_STRIPE_PRICE_PRO: a Stripe price ID starting with price_")
}
