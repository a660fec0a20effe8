package portal

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	v1 "github.com/konstruct/konstruct/api/v1"
	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/escalation"
	"github.com/konstruct/konstruct/internal/store"
)

// funcs are the helpers templates may call.
func (p *Portal) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":          ago,
		"until":        until,
		"datetime":     datetime,
		"date":         func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
		"num":          num,
		"usd":          usd,
		"initials":     initials,
		"role":         accounts.RoleLabel,
		"short":        func(s fmt.Stringer) string { return shortID(s.String()) },
		"join":         strings.Join,
		"contains":     contains,
		"deref":        derefTime,
		"dict":         dict,
		"pct":          pct,
		"plural":       plural,
		"channel":      channelLabel,
		"truncate":     truncate,
		"add":          func(a, b int) int { return a + b },
		"capitalise":   capitalise,
		"add64":        func(a, b int64) int64 { return a + b },
		"addf":         func(a, b float64) float64 { return a + b },
		"planFeatures": planFeatures,
		"dollars": func(cents int) string {
			if cents%100 == 0 {
				return "$" + num(cents/100)
			}
			return fmt.Sprintf("$%s.%02d", num(cents/100), cents%100)
		},
		"half": func(a, b float64) float64 { return (a + b) / 2 },
		"avg": func(total int64, n int) int64 {
			if n == 0 {
				return 0
			}
			return total / int64(n)
		},
		"reverseRows": func(rows []store.UsageRow) []store.UsageRow {
			out := make([]store.UsageRow, len(rows))
			for i, r := range rows {
				out[len(rows)-1-i] = r
			}
			return out
		},
		"workflowURL": func(id string) string {
			return v1.WorkflowURL(p.d.Config.TemporalUIURL, p.d.Config.TemporalNamespace, id)
		},
		"toolTitle": func(name string) string {
			if t, ok := p.d.Tools.Get(name); ok && t.Title != "" {
				return t.Title
			}
			return name
		},
		"invitationState": func(i store.Invitation, now time.Time) string { return i.State(now) },
		"duration":        duration,
		"escState":        escalationStateLabel,
		"escRules":        escalation.RulesOf,
	}
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute", "minutes") + " ago"
	case d < 24*time.Hour:
		return plural(int(d.Hours()), "hour", "hours") + " ago"
	case d < 30*24*time.Hour:
		return plural(int(d.Hours()/24), "day", "days") + " ago"
	}
	return t.UTC().Format("2 Jan 2006")
}

// until says how long until t ("in 3 days"), or "expired".
func until(t time.Time) string {
	d := time.Until(t)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Hour:
		return "in " + plural(int(math.Ceil(d.Minutes())), "minute", "minutes")
	case d < 48*time.Hour:
		return "in " + plural(int(math.Round(d.Hours())), "hour", "hours")
	}
	return "in " + plural(int(math.Round(d.Hours()/24)), "day", "days")
}

func datetime(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func num(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case int32:
		n = int64(x)
	default:
		return fmt.Sprint(v)
	}
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// usd formats micro-dollars: cents for sums of a dollar or more, finer below.
func usd(micro int64) string {
	d := float64(micro) / 1e6
	switch {
	case micro == 0:
		return "$0.00"
	case d >= 1:
		whole := int64(d)
		cents := int64(math.Round((d - float64(whole)) * 100))
		if cents == 100 {
			whole, cents = whole+1, 0
		}
		return fmt.Sprintf("$%s.%02d", num(whole), cents)
	case d >= 0.01:
		return fmt.Sprintf("$%.2f", d)
	}
	return fmt.Sprintf("$%.4f", d)
}

func initials(name, email string) string {
	var out []rune
	for _, w := range strings.Fields(name) {
		for _, r := range w {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				out = append(out, unicode.ToUpper(r))
				break
			}
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		for _, r := range email {
			if unicode.IsLetter(r) {
				return string(unicode.ToUpper(r))
			}
		}
		return "?"
	}
	return string(out)
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// pct is a/b as a percentage from 0 to 100, for bars.
func pct(a, b int64) float64 {
	if b <= 0 || a <= 0 {
		return 0
	}
	return math.Min(100, float64(a)*100/float64(b))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return num(n) + " " + many
}

func channelLabel(kind string) string {
	switch kind {
	case store.ChannelSlack:
		return "Slack"
	case store.ChannelWhatsApp:
		return "WhatsApp"
	case store.ChannelPortal:
		return "Portal chat"
	}
	return kind
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

func itoa(n int) string { return strconv.Itoa(n) }

func (p *Portal) now() time.Time { return time.Now() }
