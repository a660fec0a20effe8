package slack

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
)

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// ReplyEventType is the Slack message metadata event_type attached to every
// reply, whose event_payload.key is Outbound.Key.
const ReplyEventType = "konstruct_reply"

// FindByKey scans at most findPageSize*findMaxPages messages of a thread.
const (
	findPageSize = 200
	findMaxPages = 25
)

// Client calls Slack's Web API. It is safe for concurrent use; build one per
// process. Methods take the bot token per call, since every tenant has its own.
type Client struct {
	apiURL string
	http   *http.Client
}

// NewClient returns a Client for the Web API at apiURL (DefaultAPIURL when
// empty; tests point it at fakeslack). A nil httpClient gets one with a 30 s
// timeout. The client does not retry: the caller (a Temporal activity) owns
// retries and uses IsPermanent and RetryAfter to drive them.
func NewClient(apiURL string, httpClient *http.Client) *Client {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{apiURL: apiURL, http: httpClient}
}

// APIURL returns the Web API base URL the client calls.
func (c *Client) APIURL() string { return c.apiURL }

// api returns a slack-go client bound to token. slack-go binds the token at
// construction; building one is a few small allocations, cheaper than the
// HTTP call it precedes.
func (c *Client) api(token string) *slackapi.Client {
	return slackapi.New(token, slackapi.OptionAPIURL(c.apiURL), slackapi.OptionHTTPClient(c.http))
}

// Outbound is one message to post.
type Outbound struct {
	Channel string
	// ThreadTS is the thread to reply in ("" posts at top level).
	ThreadTS string
	// Text is sent as is, as Slack mrkdwn: &, < and > are not escaped, so
	// "<@U123>" mentions and "<url|label>" links work (slackutilsx.EscapeMessage
	// escapes literal text). Split long text with SplitText first.
	Text string
	// Key identifies this message for idempotency (e.g. workflow ID + turn +
	// part); it is attached as message metadata so FindByKey can find it after
	// a retry. "" attaches no metadata.
	Key string
	// Blocks are Block Kit blocks shown instead of Text (which stays the
	// notification's fallback).
	Blocks Blocks
	// Broadcast also shows a thread reply in the channel ("Also send to #channel").
	Broadcast bool
}

// PostMessage posts msg with chat.postMessage and returns its ts. The Key is
// attached as metadata {"event_type":"konstruct_reply","event_payload":{"key":Key}}.
//
// A retryable error does not mean the message was not posted (the response
// may have been lost after Slack stored it): before posting again, call
// FindByKey.
func (c *Client) PostMessage(ctx context.Context, token string, msg Outbound) (string, error) {
	const method = "chat.postMessage"
	opts := []slackapi.MsgOption{slackapi.MsgOptionText(msg.Text, false)}
	if msg.ThreadTS != "" {
		opts = append(opts, slackapi.MsgOptionTS(msg.ThreadTS))
	}
	if msg.Key != "" {
		opts = append(opts, slackapi.MsgOptionMetadata(slackapi.SlackMetadata{
			EventType:    ReplyEventType,
			EventPayload: map[string]any{"key": msg.Key},
		}))
	}
	if len(msg.Blocks) > 0 {
		opts = append(opts, slackapi.MsgOptionBlocks(msg.Blocks...))
	}
	if msg.Broadcast && msg.ThreadTS != "" {
		opts = append(opts, slackapi.MsgOptionBroadcast())
	}
	_, ts, err := c.api(token).PostMessageContext(ctx, msg.Channel, opts...)
	if err != nil {
		return "", wrapErr(method, err)
	}
	return ts, nil
}

// FindByKey looks through the thread threadTS in channel (conversations.replies
// with include_all_metadata) for a message carrying the reply metadata with
// key, and returns its ts. It pages with the cursor and gives up after 5,000
// messages. A thread that does not exist has no such message (found=false,
// err=nil).
func (c *Client) FindByKey(ctx context.Context, token, channel, threadTS, key string) (string, bool, error) {
	const method = "conversations.replies"
	api := c.api(token)
	params := slackapi.GetConversationRepliesParameters{
		ChannelID:          channel,
		Timestamp:          threadTS,
		Limit:              findPageSize,
		Inclusive:          true,
		IncludeAllMetadata: true,
	}
	for range findMaxPages {
		msgs, hasMore, cursor, err := api.GetConversationRepliesContext(ctx, &params)
		if err != nil {
			var apiErr slackapi.SlackErrorResponse
			if errors.As(err, &apiErr) && apiErr.Err == "thread_not_found" {
				return "", false, nil
			}
			return "", false, wrapErr(method, err)
		}
		for i := range msgs {
			md := msgs[i].Metadata
			if md.EventType != ReplyEventType {
				continue
			}
			if k, ok := md.EventPayload["key"].(string); ok && k == key {
				return msgs[i].Timestamp, true, nil
			}
		}
		if !hasMore || cursor == "" {
			return "", false, nil
		}
		params.Cursor = cursor
	}
	return "", false, nil
}

// UpdateMessage replaces the text and blocks of message ts in channel
// (chat.update), e.g. a handoff whose buttons no longer apply.
func (c *Client) UpdateMessage(ctx context.Context, token, channel, ts, text string, blocks Blocks) error {
	opts := []slackapi.MsgOption{slackapi.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slackapi.MsgOptionBlocks(blocks...))
	}
	if _, _, _, err := c.api(token).UpdateMessageContext(ctx, channel, ts, opts...); err != nil {
		return wrapErr("chat.update", err)
	}
	return nil
}

// FindInChannel looks through the newest messages at the top level of
// channel (conversations.history with include_all_metadata, at most
// findPageSize*findMaxPages of them) for one carrying the reply metadata
// with key: FindByKey for a message posted outside a thread.
func (c *Client) FindInChannel(ctx context.Context, token, channel, key string) (string, bool, error) {
	const method = "conversations.history"
	api := c.api(token)
	params := slackapi.GetConversationHistoryParameters{ChannelID: channel, Limit: findPageSize, IncludeAllMetadata: true}
	for range findMaxPages {
		r, err := api.GetConversationHistoryContext(ctx, &params)
		if err != nil {
			return "", false, wrapErr(method, err)
		}
		for i := range r.Messages {
			md := r.Messages[i].Metadata
			if md.EventType != ReplyEventType {
				continue
			}
			if k, ok := md.EventPayload["key"].(string); ok && k == key {
				return r.Messages[i].Timestamp, true, nil
			}
		}
		if !r.HasMore || r.ResponseMetaData.NextCursor == "" {
			return "", false, nil
		}
		params.Cursor = r.ResponseMetaData.NextCursor
	}
	return "", false, nil
}

// UserName returns how a workspace member is called: their display name,
// else their real name, else their user name (users.info).
func (c *Client) UserName(ctx context.Context, token, userID string) (string, error) {
	u, err := c.api(token).GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", wrapErr("users.info", err)
	}
	for _, n := range []string{u.Profile.DisplayName, u.Profile.RealName, u.RealName, u.Name} {
		if n != "" {
			return n, nil
		}
	}
	return userID, nil
}

// AuthInfo is what auth.test says about a token.
type AuthInfo struct {
	TeamID string
	Team   string
	URL    string
	// BotUserID is the bot's user ID (auth.test's user_id for a bot token).
	BotUserID string
	BotID     string
}

// AuthTest validates token with auth.test, e.g. when a workspace is connected.
func (c *Client) AuthTest(ctx context.Context, token string) (AuthInfo, error) {
	r, err := c.api(token).AuthTestContext(ctx)
	if err != nil {
		return AuthInfo{}, wrapErr("auth.test", err)
	}
	return AuthInfo{TeamID: r.TeamID, Team: r.Team, URL: r.URL, BotUserID: r.UserID, BotID: r.BotID}, nil
}

// OAuthResult is what the OAuth v2 exchange yields for a bot install.
type OAuthResult struct {
	TeamID    string
	TeamName  string
	BotToken  string
	BotUserID string
	AppID     string
	Scope     string
}

// ErrNoBotToken is returned (wrapped) when oauth.v2.access succeeds without a
// bot token, i.e. the app was installed without bot scopes.
var ErrNoBotToken = errors.New("no bot token in the OAuth response")

// OAuthExchange trades an OAuth code (from /slack/oauth/callback) for the
// workspace's bot token with oauth.v2.access.
func (c *Client) OAuthExchange(ctx context.Context, clientID, clientSecret, code, redirectURI string) (OAuthResult, error) {
	const method = "oauth.v2.access"
	r, err := slackapi.GetOAuthV2ResponseContext(ctx, c.http, clientID, clientSecret, code, redirectURI,
		slackapi.OAuthOptionAPIURL(c.apiURL))
	if err != nil {
		return OAuthResult{}, wrapErr(method, err)
	}
	if r.AccessToken == "" || (r.TokenType != "" && r.TokenType != "bot") {
		return OAuthResult{}, &Error{Method: method, Permanent: true, Err: ErrNoBotToken}
	}
	return OAuthResult{
		TeamID:    r.Team.ID,
		TeamName:  r.Team.Name,
		BotToken:  r.AccessToken,
		BotUserID: r.BotUserID,
		AppID:     r.AppID,
		Scope:     r.Scope,
	}, nil
}
