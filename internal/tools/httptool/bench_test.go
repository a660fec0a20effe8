package httptool

import (
	"net/netip"
	"testing"
)

// The SSRF check runs on every address of every dial.
func BenchmarkGuardCheck(b *testing.B) {
	g := &Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}}
	ips := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("::ffff:169.254.169.254"),
		netip.MustParseAddr("2606:4700::1111")}
	b.ReportAllocs()
	for b.Loop() {
		for _, ip := range ips {
			_ = g.Check(ip)
		}
	}
}
