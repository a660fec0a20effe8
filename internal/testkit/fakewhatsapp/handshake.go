package fakewhatsapp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// VerifyWebhook does what Meta does when an app's webhook is saved with
// "Verify and save": GET callbackURL?hub.mode=subscribe&hub.challenge=…
// &hub.verify_token=verifyToken, and accepts the callback only if it answers
// 200 with the challenge as the whole body. It returns nil when Meta would
// have accepted it.
func VerifyWebhook(ctx context.Context, callbackURL, verifyToken string) error {
	challenge := randHex(8)
	u, err := url.Parse(callbackURL)
	if err != nil {
		return fmt.Errorf("fakewhatsapp: verify webhook: %w", err)
	}
	u.RawQuery = url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {challenge}, "hub.verify_token": {verifyToken}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("fakewhatsapp: verify webhook: %w", err)
	}
	req.Header.Set("User-Agent", "facebookplatform/1.0 (+http://developers.facebook.com)")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fakewhatsapp: verify webhook: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if err != nil {
		return fmt.Errorf("fakewhatsapp: verify webhook: %w", err)
	}
	if res.StatusCode != http.StatusOK || string(body) != challenge {
		return fmt.Errorf("fakewhatsapp: the callback URL could not be verified: %d %q (want 200 %q)", res.StatusCode, body, challenge)
	}
	return nil
}
