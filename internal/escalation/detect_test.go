package escalation

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/internal/store"
)

func TestMatchKeywordMatchesWholeWordsAndPhrases(t *testing.T) {
	kw := []string{"refund", "cancel my plan", "#urgent", "Ärger"}
	for text, want := range map[string]string{
		"I want a REFUND!":                    "refund",
		"refund":                              "refund",
		"please cancel  my\nplan now":         "cancel my plan",
		"this is #urgent":                     "#urgent",
		"so much ärger with you":              "Ärger",
		"refund? no, a refund-ish thing":      "refund",
		"I was refunded twice, no refunds ok": "",
		"cancel my planner":                   "",
		"nothing to see":                      "",
	} {
		got, ok := MatchKeyword(text, kw)
		require.Equal(t, want != "", ok, text)
		require.Equal(t, want, got, text)
	}
	_, ok := MatchKeyword("anything", nil)
	require.False(t, ok)
	_, ok = MatchKeyword("anything", []string{"  "})
	require.False(t, ok, "a blank keyword matches nothing")
}

func TestAsksForHumanRecognisesPhrasingsAndNegations(t *testing.T) {
	asks := []string{
		"Can I talk to a human?",
		"can i speak with a real person please",
		"I want to speak to someone",
		"I need a human",
		"i'd like to talk to an agent",
		"I’d like a real person",
		"Let me chat with a live agent.",
		"connect me to a person",
		"Please transfer me to customer service",
		"put me through to your manager",
		"Is there a human here?",
		"can I get a representative",
		"human please",
		"Agent!",
		"REPRESENTATIVE",
		"This bot is useless. Talk to a manager now",
		"escalate this please",
		"I don't like bots. I want a human",
	}
	for _, text := range asks {
		require.True(t, AsksForHuman(text), text)
	}
	not := []string{
		"",
		"what are your opening hours?",
		"I don't want to talk to a human",
		"no need to speak with an agent, thanks",
		"I need a manager account for my team",
		"the agent of the contract is John",
		"how many people work at your company",
		"is this a person or a bot", // a question, not a request
		"my human resources department asked",
		"I want a refund",
	}
	for _, text := range not {
		require.False(t, AsksForHuman(text), text)
	}
}

func TestUnresolvedAndRepeated(t *testing.T) {
	for _, reply := range []string{
		"I don't have an answer to that.",
		"I'm not sure about that, sorry.",
		"Sorry, I can't help with refunds.",
		"I do not know.",
		"That is beyond what I can do here.",
		"",
	} {
		require.True(t, Unresolved(reply), reply)
	}
	for _, reply := range []string{"Our shop opens at 9.", "You can reset it in Settings. I know it's hidden."} {
		require.False(t, Unresolved(reply), reply)
	}
	require.True(t, Repeated("Where is my order?", "where is my order"))
	require.True(t, Repeated("where  is my ORDER??", "Where is my order?"))
	require.False(t, Repeated("where is my order", "where is my parcel"))
	require.False(t, Repeated("", ""), "nothing repeated")
}

func TestRulesOfAppliesDefaultsAndTheLegacyEnable(t *testing.T) {
	r := RulesOf(store.Escalation{})
	require.False(t, r.Enabled, "an empty document escalates nothing")
	require.Equal(t, DefaultHandoffMessage, r.HandoffMessage)
	require.Equal(t, DefaultCooldown, r.Cooldown)

	r = RulesOf(store.Escalation{Keywords: []string{"human"}})
	require.True(t, r.Enabled, "a document with rules written before the switch meant escalation")
	require.True(t, r.Allows(store.TriggerKeyword))
	require.True(t, r.Allows(store.TriggerUserRequest))
	require.True(t, r.Allows(store.TriggerTool))
	require.True(t, r.Allows(store.TriggerBudget))
	require.False(t, r.Allows(store.TriggerFailedTurns))

	off, yes, no, five := false, true, false, 5
	r = RulesOf(store.Escalation{Keywords: []string{"human"}, Enabled: &off})
	require.False(t, r.Allows(store.TriggerKeyword))
	r = RulesOf(store.Escalation{Enabled: &yes, UserRequest: &no, OnError: &no, CooldownMinutes: &five, HandoffMessage: "Hold on."})
	require.False(t, r.Allows(store.TriggerUserRequest))
	require.False(t, r.Allows(store.TriggerError))
	require.False(t, r.Allows(store.TriggerKeyword), "no keywords")
	require.True(t, r.Allows(store.TriggerTool))
	require.Equal(t, 5*time.Minute, r.Cooldown)
	require.Equal(t, "Hold on.", r.HandoffMessage)
}
