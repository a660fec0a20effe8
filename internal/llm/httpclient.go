package llm

import (
	"net"
	"net/http"
	"time"
)

// newHTTPClient builds the client a provider keeps for its lifetime.
//
//   - No Client.Timeout: the pool bounds each attempt with a context, which
//     also covers reading the body, and the caller's deadline still wins.
//   - MaxIdleConnsPerHost well above the default 2, so that concurrent
//     conversations reuse warm connections instead of paying TCP and TLS
//     set-up per call (the default would close most of them after each burst).
//   - A dial timeout, so an unroutable address fails over in seconds even
//     when the attempt timeout is long; a refused connection fails at once.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = 0
	return &http.Client{Transport: t}
}
