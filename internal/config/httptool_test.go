package config

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHTTPToolAllowCIDRs(t *testing.T) {
	c, err := Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey}))
	require.NoError(t, err)
	require.Empty(t, c.HTTPToolAllowCIDRs, "nothing internal is allowed by default")
	require.EqualValues(t, 64<<10, c.HTTPToolMaxResponseBytes)

	c, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey,
		"KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS": "10.1.2.3/24, 127.0.0.1,::1"}))
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("::1/128")}, c.HTTPToolAllowCIDRs)

	_, err = Load(env(map[string]string{"KONSTRUCT_ENCRYPTION_KEY": testKey, "KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS": "10.0.0.0/8,intranet"}))
	require.ErrorContains(t, err, "KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS: comma-separated CIDRs")
}
