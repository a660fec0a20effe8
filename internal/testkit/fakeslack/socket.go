package fakeslack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// socketState is the Socket Mode side of the fake (guarded by Server.mu).
type socketState struct {
	conns       []*socketConn // live connections, oldest first
	connections int           // connections ever accepted
	envSeq      int
	acks        map[string]json.RawMessage // envelope_id → ack payload ("null" when none)
}

type socketConn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex // gorilla allows one writer at a time
	done   chan struct{}
	closed sync.Once
}

func (c *socketConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *socketConn) close() {
	c.closed.Do(func() {
		close(c.done)
		_ = c.ws.Close()
	})
}

var upgrader = websocket.Upgrader{
	// slack-go dials with "Origin: https://api.slack.com".
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) appsConnectionsOpen(req request, r *http.Request) (int, map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.token == "" {
		return http.StatusOK, slackErr("not_authed")
	}
	if !s.appTokens[req.token] {
		if strings.HasPrefix(req.token, "xoxb-") {
			return http.StatusOK, slackErr("not_allowed_token_type")
		}
		return http.StatusOK, slackErr("invalid_auth")
	}
	s.socket.envSeq++
	url := "ws://" + r.Host + "/socket?ticket=" + fmt.Sprint(s.socket.envSeq)
	return http.StatusOK, map[string]any{"ok": true, "url": url}
}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &socketConn{ws: ws, done: make(chan struct{})}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close()
		return
	}
	s.socket.connections++
	n := len(s.socket.conns) + 1
	ping := s.pingPeriod
	s.mu.Unlock()

	hello := map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host":                        "fakeslack",
			"build_number":                1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": DefaultAPIAppID},
	}
	if err := c.write(hello); err != nil {
		c.close()
		return
	}
	// Register only after hello, so a pushed event never precedes it.
	s.mu.Lock()
	s.socket.conns = append(s.socket.conns, c)
	s.notifyLocked()
	s.mu.Unlock()

	go s.pingLoop(c, ping)
	s.readAcks(c)

	c.close()
	s.mu.Lock()
	for i, x := range s.socket.conns {
		if x == c {
			s.socket.conns = append(s.socket.conns[:i], s.socket.conns[i+1:]...)
			break
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// pingLoop sends WebSocket pings as Slack does; slack-go reconnects when they stop.
func (s *Server) pingLoop(c *socketConn, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.wmu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

// readAcks records acknowledgements ({"envelope_id":"…","payload":…}) until
// the connection ends.
func (s *Server) readAcks(c *socketConn) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		if len(ack.Payload) == 0 {
			ack.Payload = json.RawMessage("null")
		}
		s.mu.Lock()
		s.socket.acks[ack.EnvelopeID] = ack.Payload
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// ErrNoSocket is returned by PushEvent when no Socket Mode client is connected.
var ErrNoSocket = errors.New("fakeslack: no Socket Mode connection")

// PushEvent sends an Events API payload (e.g. from AppMention) to the newest
// Socket Mode connection inside an events_api envelope, and returns the
// envelope_id that the client must acknowledge.
func (s *Server) PushEvent(payload []byte) (string, error) {
	return s.push(payload, 0, "")
}

// PushEventRetry is PushEvent for a redelivery: retry_attempt and retry_reason
// are set as Slack sets them when an earlier envelope went unacknowledged.
func (s *Server) PushEventRetry(payload []byte, attempt int, reason string) (string, error) {
	return s.push(payload, attempt, reason)
}

// PushInteractive sends an interaction (ButtonClickPayload) in an
// "interactive" envelope, and returns its envelope_id.
func (s *Server) PushInteractive(payload []byte) (string, error) {
	return s.pushTyped("interactive", payload, 0, "")
}

func (s *Server) push(payload []byte, attempt int, reason string) (string, error) {
	return s.pushTyped("events_api", payload, attempt, reason)
}

func (s *Server) pushTyped(typ string, payload []byte, attempt int, reason string) (string, error) {
	if !json.Valid(payload) {
		return "", errors.New("fakeslack: PushEvent: payload is not JSON")
	}
	s.mu.Lock()
	if len(s.socket.conns) == 0 {
		s.mu.Unlock()
		return "", ErrNoSocket
	}
	c := s.socket.conns[len(s.socket.conns)-1]
	s.socket.envSeq++
	id := fmt.Sprintf("%08x-fake-4e17-a7e5-%012d", s.socket.envSeq, s.socket.envSeq)
	s.mu.Unlock()

	env := map[string]any{
		"envelope_id":              id,
		"payload":                  json.RawMessage(payload),
		"type":                     typ,
		"accepts_response_payload": false,
		"retry_attempt":            attempt,
		"retry_reason":             reason,
	}
	if err := c.write(env); err != nil {
		return "", fmt.Errorf("fakeslack: PushEvent: %w", err)
	}
	return id, nil
}

// Disconnect asks every Socket Mode client to reconnect, as Slack does before
// it rotates a connection ({"type":"disconnect","reason":"refresh_requested"}).
func (s *Server) Disconnect() {
	s.mu.Lock()
	conns := append([]*socketConn(nil), s.socket.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.write(map[string]any{
			"type":       "disconnect",
			"reason":     "refresh_requested",
			"debug_info": map[string]any{"host": "fakeslack"},
		})
	}
}

// Acked reports whether envelopeID has been acknowledged.
func (s *Server) Acked(envelopeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.socket.acks[envelopeID]
	return ok
}

// SocketConnections returns how many Socket Mode connections were accepted so
// far (reconnects included) and how many are open now.
func (s *Server) SocketConnections() (total, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socket.connections, len(s.socket.conns)
}

// WaitForSocket waits until at least total Socket Mode connections have been
// accepted and one is open, failing the test after timeout.
func (s *Server) WaitForSocket(t testing.TB, total int, timeout time.Duration) {
	t.Helper()
	s.waitFor(t, timeout, fmt.Sprintf("Socket Mode connection #%d", total), func() bool {
		return s.socket.connections >= total && len(s.socket.conns) > 0
	})
}

// WaitForAck waits until envelopeID is acknowledged and returns the ack's
// payload ("null" when it had none), failing the test after timeout.
func (s *Server) WaitForAck(t testing.TB, envelopeID string, timeout time.Duration) json.RawMessage {
	t.Helper()
	var p json.RawMessage
	s.waitFor(t, timeout, "ack of envelope "+envelopeID, func() bool {
		var ok bool
		p, ok = s.socket.acks[envelopeID]
		return ok
	})
	return p
}
