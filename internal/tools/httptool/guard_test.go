package httptool

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGuardRefusesInternalAddresses(t *testing.T) {
	g := &Guard{}
	for _, s := range []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
		"100.64.0.1", "169.254.169.254", "169.254.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
		"::", "::1", "fd00:ec2::254", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "fe80::1%eth0",
	} {
		err := g.Check(netip.MustParseAddr(s))
		require.Error(t, err, s)
		require.True(t, IsRefused(err), s)
	}
	for _, s := range []string{"93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"} {
		require.NoError(t, g.Check(netip.MustParseAddr(s)), s)
	}
	allow := &Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("127.0.0.1/32")}}
	require.NoError(t, allow.Check(netip.MustParseAddr("10.1.2.3")))
	require.NoError(t, allow.Check(netip.MustParseAddr("::ffff:127.0.0.1")))
	require.Error(t, allow.Check(netip.MustParseAddr("10.1.3.1")))
	require.Error(t, allow.Check(netip.MustParseAddr("169.254.169.254")))
}

// countingListener counts the connections that reached it.
func countingListener(t *testing.T) (string, *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// The Control hook refuses just before connect(2): nothing is sent. Only a
// loopback listener is ever a real destination here; the other addresses are
// refused before the kernel is asked to connect (machine rule: no traffic to
// 10.x or 169.254.x from tests).
func TestControlRefusesBeforeConnect(t *testing.T) {
	addr, accepted := countingListener(t)
	d := net.Dialer{Timeout: time.Second, Control: (&Guard{}).control}
	for _, target := range []string{addr, "10.0.0.1:80", "169.254.169.254:80", "[::ffff:127.0.0.1]:" + strings.Split(addr, ":")[1]} {
		_, err := d.DialContext(context.Background(), "tcp", target)
		require.Error(t, err, target)
		require.True(t, IsRefused(err), "%s: %v", target, err)
	}
	require.Zero(t, accepted.Load(), "a refused dial reached the listener")
}

type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := f[host]; ok {
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
	return net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
}

func get(t *testing.T, c *Client, url string) (Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return c.Do(context.Background(), req)
}

func TestClientRefusesInternalDestinations(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	c := NewClient(Options{Resolver: fakeResolver{
		"private.test":  {"10.0.0.1"},
		"metadata.test": {"169.254.169.254"},
		"loop.test":     {"127.0.0.1"},
		"rebind.test":   {"93.184.216.34", "127.0.0.1"}, // one bad address refuses the name
	}})
	for _, u := range []string{
		srv.URL, "http://localhost:" + port, "http://loop.test:" + port, "http://[::1]:" + port,
		"http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
		"http://private.test/", "http://metadata.test/", "http://rebind.test:" + port,
	} {
		_, err := get(t, c, u)
		require.Error(t, err, u)
		require.True(t, IsRefused(err), "%s: %v", u, err)
	}
	require.Zero(t, hits.Load())

	_, err := get(t, c, "file:///etc/passwd")
	require.ErrorContains(t, err, "only http and https")
}

func TestClientRedirectsAreRechecked(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1") // ignored: a proxy would connect unchecked
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	var gotKey atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey.Store(r.Header.Get("X-Api-Key") + "|" + r.Header.Get("Idempotency-Key"))
		_, _ = w.Write([]byte("elsewhere"))
	}))
	defer other.Close()
	var hops atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/meta":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/private-name":
			http.Redirect(w, r, "http://private.test/", http.StatusFound)
		case "/loop":
			hops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/other":
			http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("a", 5000)))
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	c := NewClient(Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxResponseBytes: 1000,
		Resolver: fakeResolver{"private.test": {"10.0.0.1"}}})

	resp, err := get(t, c, srv.URL+"/")
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))

	for _, p := range []string{"/meta", "/private-name"} {
		_, err = get(t, c, srv.URL+p)
		require.True(t, IsRefused(err), "%s: %v", p, err)
	}
	_, err = get(t, c, srv.URL+"/loop")
	require.ErrorContains(t, err, "stopped after 3 redirects")
	require.EqualValues(t, 4, hops.Load())

	resp, err = get(t, c, srv.URL+"/big")
	require.NoError(t, err)
	require.True(t, resp.Truncated)
	require.Len(t, resp.Body, 1000)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/other", nil)
	req.Header.Set("X-Api-Key", "sekret")
	req.Header.Set("Idempotency-Key", "k1")
	resp, err = c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "elsewhere", string(resp.Body))
	require.Equal(t, "|k1", gotKey.Load(), "the operator's header is not sent to another host")
}
