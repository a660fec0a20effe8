package llm

import (
	"log/slog"
	"strings"
	"sync"
)

// price is in micro-USD per million tokens, which is numerically USD per
// million tokens × 10⁶: list prices stay exact integers.
type price struct{ in, out int64 }

// prices are list prices for standard (non-batch, uncached) API use. Dated
// snapshots and "-latest" aliases resolve to their family, e.g.
// gpt-4o-mini-2024-07-18 and claude-sonnet-4-5-20250929.
var prices = map[string]price{
	// OpenAI
	"gpt-4o-mini":   {150_000, 600_000},
	"gpt-4o":        {2_500_000, 10_000_000},
	"gpt-4.1":       {2_000_000, 8_000_000},
	"gpt-4.1-mini":  {400_000, 1_600_000},
	"gpt-4.1-nano":  {100_000, 400_000},
	"gpt-5":         {1_250_000, 10_000_000},
	"gpt-5-mini":    {250_000, 2_000_000},
	"gpt-5-nano":    {50_000, 400_000},
	"gpt-4-turbo":   {10_000_000, 30_000_000},
	"gpt-3.5-turbo": {500_000, 1_500_000},
	"o1":            {15_000_000, 60_000_000},
	"o1-mini":       {1_100_000, 4_400_000},
	"o1-pro":        {150_000_000, 600_000_000},
	"o3":            {2_000_000, 8_000_000},
	"o3-mini":       {1_100_000, 4_400_000},
	"o3-pro":        {20_000_000, 80_000_000},
	"o4-mini":       {1_100_000, 4_400_000},

	// OpenAI embeddings (input tokens only)
	"text-embedding-3-small": {20_000, 0},
	"text-embedding-3-large": {130_000, 0},
	"text-embedding-ada-002": {100_000, 0},

	// Anthropic
	"claude-sonnet-4-5": {3_000_000, 15_000_000},
	"claude-sonnet-4":   {3_000_000, 15_000_000},
	"claude-sonnet-4-0": {3_000_000, 15_000_000},
	"claude-3-7-sonnet": {3_000_000, 15_000_000},
	"claude-haiku-4-5":  {1_000_000, 5_000_000},
	"claude-3-5-haiku":  {800_000, 4_000_000},
	"claude-opus-4-5":   {5_000_000, 25_000_000},
	"claude-opus-4-1":   {15_000_000, 75_000_000},
	"claude-opus-4":     {15_000_000, 75_000_000},
	"claude-opus-4-0":   {15_000_000, 75_000_000},
}

// Cost returns the price of a call in micro-USD, rounded to the nearest one.
// model is "provider/model" or a bare model name. Ollama models run locally
// and cost 0; other unknown models cost 0 and are logged once each, so a
// missing price shows up in the logs instead of silently as free.
func Cost(model string, u Usage) int64 {
	provider, name, ok := strings.Cut(model, "/")
	if !ok {
		provider, name = "", model
	}
	return cost(provider, name, u)
}

func cost(provider, model string, u Usage) int64 {
	if provider == ProviderOllama {
		return 0
	}
	p, ok := prices[priceKey(model)]
	if !ok {
		warnUnpriced(provider, model)
		return 0
	}
	return (int64(u.InputTokens)*p.in + int64(u.OutputTokens)*p.out + 500_000) / 1_000_000
}

// priceKey strips a snapshot date (-20250929, -2024-07-18) or -latest.
func priceKey(model string) string {
	if m, ok := strings.CutSuffix(model, "-latest"); ok {
		return m
	}
	if n := len(model); n > 9 && model[n-9] == '-' && allDigits(model[n-8:]) {
		return model[:n-9]
	}
	if n := len(model); n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		allDigits(model[n-10:n-6]) && allDigits(model[n-5:n-3]) && allDigits(model[n-2:]) {
		return model[:n-11]
	}
	return model
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

var unpriced sync.Map // "provider/model" → struct{}

func warnUnpriced(provider, model string) {
	key := provider + "/" + model
	if _, seen := unpriced.LoadOrStore(key, struct{}{}); !seen {
		slog.Warn("llm: no price for model; its calls are recorded as free", "provider", provider, "model", model)
	}
}
