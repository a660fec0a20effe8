package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/logging"
	"github.com/konstruct/konstruct/internal/memory"
	"github.com/konstruct/konstruct/internal/store"
)

// SummarizeInput asks for the summary of a conversation that is closing.
type SummarizeInput struct {
	TenantID       string `json:"tenant_id"`
	AgentID        string `json:"agent_id"`
	ConversationID string `json:"conversation_id"`
	WorkflowID     string `json:"workflow_id"`
	Turn           int    `json:"turn"` // the last turn: the summary covers the conversation up to it
}

// SummarizeOutput says whether a summary was written.
type SummarizeOutput struct {
	Written  bool `json:"written"`
	Embedded bool `json:"embedded"`
}

// summarySystem instructs the model that writes a conversation's summary.
const summarySystem = "You write the long-term memory of an assistant. Summarise the conversation below for the " +
	"assistant's future conversations with the same user: the facts the user gave about themselves, their situation " +
	"and preferences, what they asked for, what was answered or promised, and anything left open. Write plain " +
	"sentences in the third person (\"The user ...\"), at most 120 words, without greetings or commentary."

// Summarize writes and embeds the summary of a closing conversation, as a
// memory of its end user (the conversation's user_ref), recalled like a
// message in their later conversations. The summary is keyed by workflow and
// turn, so a retried activity asks the model once; a conversation reopened
// and closed again is summarised whole again and its older summary removed.
func (a *Conversation) Summarize(ctx context.Context, in SummarizeInput) (SummarizeOutput, error) {
	ctx = logging.With(logCtx(ctx, in.TenantID, in.WorkflowID), slog.String("agent_id", in.AgentID))
	if !a.Memory.Enabled() || in.Turn <= 0 {
		return SummarizeOutput{}, nil
	}
	tenantID, convID, err := parseIDs(in.TenantID, in.ConversationID)
	if err != nil {
		return SummarizeOutput{}, err
	}
	_, agentID, err := parseIDs(in.TenantID, in.AgentID)
	if err != nil {
		return SummarizeOutput{}, err
	}
	key := in.WorkflowID + ":" + strconv.Itoa(in.Turn) + ":summary"
	var (
		cv      store.Conversation
		msgs    []store.Message
		agent   store.Agent
		done    bool
		keyRows []store.LLMKey
	)
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		if done, err = tx.HasMemory(ctx, key); err != nil || done {
			return err
		}
		if a.LLMKeys != nil {
			if keyRows, err = tx.ListLLMKeys(ctx); err != nil {
				return err
			}
		}
		if cv, err = tx.GetConversation(ctx, convID); err != nil {
			return err
		}
		if agent, err = tx.GetAgent(ctx, agentID); err != nil {
			return err
		}
		msgs, err = tx.ListMessages(ctx, convID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return SummarizeOutput{}, nil // deleted with its agent or tenant
	}
	if err != nil {
		return SummarizeOutput{}, fmt.Errorf("activities: summarize: load: %w", err)
	}
	if done {
		return SummarizeOutput{Written: true}, nil
	}
	if cv.UserRef == "" {
		return SummarizeOutput{}, nil
	}
	chain := agent.Models
	if len(chain) == 0 {
		chain = a.DefaultModels
	}
	transcript := summaryTranscript(msgs, memory.BudgetFor(chain, 0).Input-llm.EstimateTokens(summarySystem)-200)
	if transcript == "" {
		return SummarizeOutput{}, nil
	}
	keys, err := a.llmKeys(ctx, tenantID, keyRows)
	if err != nil {
		return SummarizeOutput{}, fmt.Errorf("activities: summarize: %w", err)
	}
	resp, err := a.LLM.CompleteWith(ctx, keys, chain, llm.Request{System: summarySystem,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: transcript}}, MaxTokens: 400})
	if err != nil {
		return SummarizeOutput{}, classifyLLMError(err)
	}
	text := strings.TrimSpace(resp.Content)
	if text == "" {
		return SummarizeOutput{}, nil
	}
	var latency int64
	if n := len(resp.Attempts); n > 0 {
		latency = resp.Attempts[n-1].Duration.Milliseconds()
	}
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		llmKey := in.WorkflowID + ":" + strconv.Itoa(in.Turn) + ":llm:summary"
		if err := tx.AddUsage(ctx, store.Usage{AgentID: &agentID, ConversationID: &convID, Provider: resp.Provider,
			Model: resp.Model, InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
			CostMicroUSD: resp.CostMicroUSD, LatencyMS: int(latency), KeySource: resp.KeySource, IdempotencyKey: llmKey}); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, store.AuditEvent{Actor: "agent:" + agentID.String(), Action: store.AuditLLMCall,
			TargetType: "model", TargetID: resp.Provider + "/" + resp.Model, AgentID: &agentID, ConversationID: &convID,
			WorkflowID: in.WorkflowID, IdempotencyKey: llmKey,
			Data: map[string]any{"outcome": "ok", "purpose": "summary", "turn": in.Turn, "provider": resp.Provider, "model": resp.Model,
				"input_tokens": resp.Usage.InputTokens, "output_tokens": resp.Usage.OutputTokens,
				"cost_micro_usd": resp.CostMicroUSD, "latency_ms": latency, "key_source": resp.KeySource}}); err != nil {
			return err
		}
		return tx.DeleteOlderSummaries(ctx, convID, key)
	})
	if err != nil {
		return SummarizeOutput{}, fmt.Errorf("activities: summarize: record: %w", err)
	}
	r, err := a.Memory.Remember(ctx, memory.Target{TenantID: tenantID, AgentID: agentID, ConversationID: convID,
		EndUserRef: cv.UserRef, WorkflowID: in.WorkflowID, EmbedKey: store.AuditKeyEmbed(in.WorkflowID, in.Turn, 2), Purpose: "summary"},
		[]store.Memory{{Turn: in.Turn, Kind: store.MemorySummary, Role: "system", Content: text, IdempotencyKey: key}})
	if err != nil {
		return SummarizeOutput{}, fmt.Errorf("activities: summarize: %w", err)
	}
	return SummarizeOutput{Written: true, Embedded: r.Embedded > 0 && r.Pending == 0}, nil
}

// summaryTranscript renders the user and assistant messages, newest kept
// when they do not all fit in budget tokens.
func summaryTranscript(msgs []store.Message, budget int) string {
	var lines []string
	used := 0
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Role != "user" && m.Role != "assistant" {
			continue
		}
		who := "User"
		if m.Role == "assistant" {
			who = "Assistant"
		}
		line := who + ": " + strings.Join(strings.Fields(m.Content), " ")
		n := llm.EstimateTokens(line) + 1
		if used+n > budget {
			break
		}
		used += n
		lines = append(lines, line)
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return strings.Join(lines, "\n")
}
