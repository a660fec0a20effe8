package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/store"
)

// describeSystem instructs the vision model that describes an image for a
// model that cannot see it.
const describeSystem = "You describe images for an assistant that cannot see them. Describe the image the user sent: " +
	"what it shows, any text in it (transcribed exactly), numbers, and anything relevant to the user's message. " +
	"Be factual and complete, in at most 150 words, without greetings or commentary."

// turnImages loads the current turn's images for the model chain. A model
// that can see gets the bytes; for one that cannot, each image carries a
// text instead: when the chain's first model cannot see, a description
// written by the first model in the chain that can (a separate call, once
// per image, recorded in usage and audit); else a note that it was left out.
func (a *Conversation) turnImages(ctx context.Context, tenantID, agentID, convID uuid.UUID, chain []string, in RespondInput, userText string) ([]llm.Image, []store.Media, error) {
	if len(in.Media) == 0 {
		return nil, nil, nil
	}
	ids := make([]uuid.UUID, 0, len(in.Media))
	for _, s := range in.Media {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, nil, temporal.NewNonRetryableApplicationError("bad media ID "+s, "BadInput", err)
		}
		ids = append(ids, id)
	}
	var rows []store.Media
	err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		rows, err = tx.LoadMedia(ctx, ids)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		// Deleted since it was fetched (the end user was forgotten): answer
		// without it.
		a.Logger.WarnContext(ctx, "an image of this turn is no longer stored; answering without it", "error", err)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("activities: respond: load images: %w", err)
	}
	vision := llm.VisionModels(chain)
	describe := len(vision) > 0 && !llm.SupportsVision(chain[0])
	imgs := make([]llm.Image, len(rows))
	for i, m := range rows {
		label := MediaMarker(m.Name, m.Caption)
		label = strings.TrimSuffix(strings.TrimPrefix(label, "["), "]")
		img := llm.Image{MimeType: m.MimeType, Text: "[" + label + " — you cannot see images, so you do not know what it shows]"}
		if len(vision) > 0 {
			img.Data = m.Data
		}
		if describe {
			d, err := a.describeImage(ctx, tenantID, agentID, convID, vision, in, m, userText)
			if err != nil {
				return nil, nil, err
			}
			if d != "" {
				img.Text = "[" + label + ". You cannot see it; another model describes it: " + d + "]"
			}
		}
		imgs[i] = img
	}
	return imgs, rows, nil
}

// describeImage returns the stored description of m, or has the vision
// models describe it and stores it. An unavailable chain fails retryably
// (the turn waits, as for any model outage); a request they refuse leaves
// the image undescribed ("").
func (a *Conversation) describeImage(ctx context.Context, tenantID, agentID, convID uuid.UUID, vision []string, in RespondInput, m store.Media, userText string) (string, error) {
	if m.Description != "" {
		return m.Description, nil
	}
	prompt := "Describe this image."
	if t := strings.TrimSpace(userText); t != "" {
		prompt += " The user's message with it: " + t
	}
	req := llm.Request{System: describeSystem, MaxTokens: 400, Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt,
		Images: []llm.Image{{MimeType: m.MimeType, Data: m.Data}}}}}
	key := in.WorkflowID + ":" + strconv.Itoa(in.Turn) + ":llm:describe:" + m.ID.String()
	start := time.Now()
	resp, err := a.LLM.Complete(ctx, vision, req)
	if err != nil {
		a.auditFailedDescribe(ctx, in, tenantID, agentID, convID, key, m.ID, err, time.Since(start))
		if llm.KindOf(err) == llm.KindUnavailable || llm.KindOf(err) == llm.KindCanceled {
			return "", fmt.Errorf("activities: respond: describe image: %w", err)
		}
		a.Logger.WarnContext(ctx, "no vision model would describe the image; answering without its description",
			"media_id", m.ID, "error", err)
		return "", nil
	}
	text := strings.TrimSpace(resp.Content)
	var latency time.Duration
	if n := len(resp.Attempts); n > 0 {
		latency = resp.Attempts[n-1].Duration
	}
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := tx.AddUsage(ctx, store.Usage{AgentID: &agentID, ConversationID: &convID, Provider: resp.Provider,
			Model: resp.Model, InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
			CostMicroUSD: resp.CostMicroUSD, LatencyMS: int(latency.Milliseconds()), IdempotencyKey: key}); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, store.AuditEvent{Actor: "agent:" + agentID.String(), Action: store.AuditLLMCall,
			TargetType: "model", TargetID: resp.Provider + "/" + resp.Model, AgentID: &agentID, ConversationID: &convID,
			WorkflowID: in.WorkflowID, IdempotencyKey: key,
			Data: map[string]any{"outcome": AuditOutcomeOK, "purpose": "describe_image", "turn": in.Turn, "media_id": m.ID.String(),
				"provider": resp.Provider, "model": resp.Model, "input_tokens": resp.Usage.InputTokens,
				"output_tokens": resp.Usage.OutputTokens, "cost_micro_usd": resp.CostMicroUSD, "latency_ms": latency.Milliseconds(),
				"fallbacks": max(len(resp.Attempts)-1, 0), "attempts": attemptsData(resp.Attempts)}}); err != nil {
			return err
		}
		if text == "" {
			return nil
		}
		var err error
		text, err = tx.SetMediaDescription(ctx, m.ID, clip(text, 20000), resp.Provider+"/"+resp.Model)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("activities: respond: record image description: %w", err)
	}
	return text, nil
}

// auditFailedDescribe records a description no model wrote, once per
// activity attempt (best effort, like recordFailedCall).
func (a *Conversation) auditFailedDescribe(ctx context.Context, in RespondInput, tenantID, agentID, convID uuid.UUID, key string, mediaID uuid.UUID, callErr error, took time.Duration) {
	if ctx.Err() != nil {
		return
	}
	var lerr *llm.Error
	var attempts []llm.Attempt
	if errors.As(callErr, &lerr) {
		attempts = lerr.Attempts
	}
	e := store.AuditEvent{Actor: "agent:" + agentID.String(), Action: store.AuditLLMCall, TargetType: "model",
		AgentID: &agentID, ConversationID: &convID, WorkflowID: in.WorkflowID,
		IdempotencyKey: key + ":failed:" + strconv.Itoa(int(attemptOf(ctx))),
		Data: map[string]any{"outcome": AuditOutcomeFailed, "purpose": "describe_image", "turn": in.Turn, "media_id": mediaID.String(),
			"activity_attempt": attemptOf(ctx), "error_kind": llm.KindOf(callErr).String(), "error": callErr.Error(),
			"latency_ms": took.Milliseconds(), "attempts": attemptsData(attempts)}}
	if err := a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error { return tx.AppendAudit(ctx, e) }); err != nil {
		a.Logger.WarnContext(ctx, "audit of a failed image description not recorded", "err", err)
	}
}

// attachImages puts the current turn's images on its user message (the last
// user message of the window), in place of their markers.
func attachImages(history []Message, msgs []llm.Message, turn int, imgs []llm.Image, rows []store.Media) {
	if len(imgs) == 0 {
		return
	}
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Role != "user" || (history[i].Turn != 0 && history[i].Turn != turn) {
			continue
		}
		content := msgs[i].Content
		for _, m := range rows {
			content = strings.Replace(content, MediaMarker(m.Name, m.Caption), "", 1)
		}
		msgs[i].Content = strings.TrimSpace(content)
		msgs[i].Images = imgs
		return
	}
}
