package httptool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// Defaults of a Client's zero fields.
const (
	DefaultMaxResponseBytes = 64 << 10
	DefaultMaxRedirects     = 3
	DefaultTimeout          = 15 * time.Second
)

// Client makes a tool's HTTP requests. The zero value is not usable; build
// one with NewClient.
type Client struct {
	guard            *Guard
	http             *http.Client
	maxResponseBytes int64
}

// Options configure NewClient; zero values take the defaults.
type Options struct {
	Allow            []netip.Prefix // networks allowed although refused by default
	MaxResponseBytes int64          // a longer body is cut here (and said to be)
	MaxRedirects     int
	Resolver         Resolver // net.DefaultResolver when nil
}

// NewClient builds the guarded client.
func NewClient(o Options) *Client {
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	g := &Guard{Allow: o.Allow}
	tr := guardedTransport(g, o.Resolver)
	tr.ResponseHeaderTimeout = DefaultTimeout
	maxHops := o.MaxRedirects
	return &Client{guard: g, maxResponseBytes: o.MaxResponseBytes, http: &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxHops {
				return fmt.Errorf("stopped after %d redirects", maxHops)
			}
			if err := checkURL(req.URL); err != nil {
				return err
			}
			// An IP literal is refused here; a name is resolved and checked
			// when the hop is dialled, like the first request.
			if ip, err := netip.ParseAddr(req.URL.Hostname()); err == nil {
				if err := g.Check(ip); err != nil {
					return err
				}
			}
			// The operator's headers (API keys) are for the declared host:
			// a redirect elsewhere does not get them.
			if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				for k := range req.Header {
					switch http.CanonicalHeaderKey(k) {
					case "Accept", "Content-Type", "User-Agent", "Idempotency-Key":
					default:
						req.Header.Del(k)
					}
				}
			}
			return nil
		},
	}}
}

// guardedTransport dials only what g allows, checked after resolution and
// again just before connecting, and never through a proxy.
func guardedTransport(g *Guard, r Resolver) *http.Transport {
	d := &dialer{guard: g, resolver: r, net: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}}
	return &http.Transport{
		Proxy:               nil, // never HTTP(S)_PROXY: a proxy would connect for us, unchecked
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        32,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

// NewGuardedHTTPClient is a plain *http.Client with the same guard as tools
// have, for other calls to URLs a tenant chose (its own LLM server): it
// refuses loopback, private, link-local and metadata addresses unless allow
// lists them. It sets no timeout and does not cap responses: its caller
// bounds each call with a context (LLM answers can take a minute).
func NewGuardedHTTPClient(allow []netip.Prefix) *http.Client {
	tr := guardedTransport(&Guard{Allow: allow}, net.DefaultResolver)
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout = 256, 16, 90*time.Second
	return &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > DefaultMaxRedirects {
			return fmt.Errorf("stopped after %d redirects", DefaultMaxRedirects)
		}
		return checkURL(req.URL)
	}}
}

func checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("only http and https URLs are allowed, not %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	if u.User != nil {
		return errors.New("credentials in the URL are not allowed; declare a header")
	}
	return nil
}

// Response is what came back, the body cut at the client's cap.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool // the body was longer than the cap
}

// Do sends req and reads at most the cap of its response. A refused address
// comes back as an error wrapping *RefusedError, before anything was sent.
func (c *Client) Do(ctx context.Context, req *http.Request) (Response, error) {
	if err := checkURL(req.URL); err != nil {
		return Response{}, err
	}
	resp, err := c.http.Do(req.WithContext(ctx))
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponseBytes+1))
	if err != nil {
		return Response{}, fmt.Errorf("httptool: read response: %w", err)
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if int64(len(body)) > c.maxResponseBytes {
		out.Body, out.Truncated = body[:c.maxResponseBytes], true
	}
	return out, nil
}

// IsRefused reports whether err is the guard refusing a destination.
func IsRefused(err error) bool {
	var re *RefusedError
	return errors.As(err, &re)
}
