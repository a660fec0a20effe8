// Package httptool runs the HTTP tools an operator declares for an agent,
// through a client that cannot be turned against the platform's own network
// (SSRF): every address is checked after DNS resolution and just before the
// connection is made, redirects are re-checked hop by hop, nothing comes from
// the environment's proxy settings, and responses are capped.
package httptool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// refused lists the networks a tool may not reach unless an operator allows
// them: the host itself, private and shared address space, link-local (where
// cloud metadata services live), and addresses that are not one host.
var refused = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata lives here)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local (private) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("100::/64"), "a discard address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
}

// RefusedError is a destination the guard would not connect to. It is only
// ever returned before a connection is attempted.
type RefusedError struct {
	Host string // as asked for, when it was a name
	IP   netip.Addr
	Why  string
}

func (e *RefusedError) Error() string {
	if e.Host != "" && e.Host != e.IP.String() {
		return fmt.Sprintf("refused to connect to %s (%s): %s", e.Host, e.IP, e.Why)
	}
	return fmt.Sprintf("refused to connect to %s: %s", e.IP, e.Why)
}

// Guard decides which addresses a tool may connect to.
type Guard struct {
	// Allow lists networks an operator lets tools reach although they are
	// refused by default (KONSTRUCT_HTTP_TOOL_ALLOW_CIDRS), e.g. an internal
	// API at 10.1.2.3/32. Empty by default.
	Allow []netip.Prefix
}

// Check refuses ip unless it is a public unicast address or allowed. IPv4
// addresses written as IPv6 (::ffff:a.b.c.d, and NAT64's 64:ff9b::a.b.c.d)
// are judged as the IPv4 address they carry.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !ip.IsValid() {
		return &RefusedError{IP: ip, Why: "not an IP address"}
	}
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, r := range refused {
		if r.prefix.Contains(ip) {
			return &RefusedError{IP: ip, Why: r.why}
		}
	}
	return nil
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// control is the net.Dialer hook run after the address is resolved and just
// before connect(2): the last word, whatever resolved the name.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("httptool: dial %s: %w", address, err)
	}
	return g.Check(ap.Addr())
}

// Resolver looks up a host's addresses; tests inject one, production uses
// net.DefaultResolver.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialer resolves the host itself, refuses it if any address is refused (a
// name that resolves to both a public and a private address is a rebinding
// trick), and connects to the checked address — never resolving twice — with
// the Control hook checking once more.
type dialer struct {
	guard    *Guard
	resolver Resolver
	net      net.Dialer
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("httptool: dial %s: %w", address, err)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ips = []netip.Addr{ip}
	} else {
		if ips, err = d.resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("httptool: resolve %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("httptool: resolve %s: no addresses", host)
		}
	}
	for _, ip := range ips {
		if err := d.guard.Check(ip); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Host = host
			}
			return nil, err
		}
	}
	var last error
	for _, ip := range ips {
		c, err := d.net.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}
