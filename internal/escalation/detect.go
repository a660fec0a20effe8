package escalation

import (
	"regexp"
	"strings"
	"unicode"
)

// normalize lowercases text, turns curly apostrophes straight and collapses
// every run of whitespace into one space.
func normalize(text string) string {
	text = strings.ToLower(text)
	text = strings.NewReplacer("’", "'", "‘", "'", "`", "'").Replace(text)
	return strings.Join(strings.Fields(text), " ")
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// MatchKeyword returns the first of keywords that text contains as whole
// words (case-insensitive; "refund" matches "Refund!" but not "refunded"),
// and whether one did. A keyword may be a phrase ("cancel my plan").
func MatchKeyword(text string, keywords []string) (string, bool) {
	t := normalize(text)
	for _, k := range keywords {
		nk := normalize(k)
		if nk == "" {
			continue
		}
		for from := 0; from <= len(t)-len(nk); {
			i := strings.Index(t[from:], nk)
			if i < 0 {
				break
			}
			i += from
			end := i + len(nk)
			before, after := ' ', ' '
			if i > 0 {
				before = lastRune(t[:i])
			}
			if end < len(t) {
				after = firstRune(t[end:])
			}
			// A keyword that starts or ends with a non-word character
			// ("#urgent") needs no boundary on that side.
			if (!isWordRune(firstRune(nk)) || !isWordRune(before)) && (!isWordRune(lastRune(nk)) || !isWordRune(after)) {
				return k, true
			}
			from = i + len(string(firstRune(t[i:])))
		}
	}
	return "", false
}

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return ' '
}

func lastRune(s string) rune {
	r := ' '
	for _, c := range s {
		r = c
	}
	return r
}

// person names whom a user asks for. Managers and supervisors count only
// with a verb of talking ("talk to a manager"), since "I need a manager
// account" is not a request for one.
const (
	person = `(?:a |an |the |some |any |your |one of your )?(?:real |actual |live |human |another )?` +
		`(?:human(?: being| agent)?|person|people|agent|representative|rep|operator|someone|somebody|anyone|anybody|` +
		`staff(?: member)?|employee|colleague|support (?:agent|person|team|staff)|` +
		`customer (?:service|support|care)(?: agent| representative| team)?)`
	boss = `(?:a |an |the |your )?(?:manager|supervisor)`
	// end: the request stops there (a clause boundary, or a word that does
	// not make the person the object of something else).
	end = `(?:$|[.,!?;:]| please| pls| now| asap| instead| right now| here| on (?:the|this) chat| about| who| that| if| because| for| and| or)`
)

// askPatterns recognise a user asking for a person. They run on normalised
// text (lowercase, single spaces, straight apostrophes).
var askPatterns = []*regexp.Regexp{
	// "can I talk to a human", "let me speak with someone real", "chat with an agent"
	regexp.MustCompile(`\b(?:talk|speak|chat|get through|get in touch|communicate)(?: directly)? (?:to|with) (?:` + person + `|` + boss + `)` + end),
	// "connect me to a person", "transfer me to an agent", "put me through to someone"
	regexp.MustCompile(`\b(?:connect|transfer|put|pass|forward|hand|route|escalate) (?:me|this|my (?:case|request|issue|chat)) (?:through |over |on )?(?:to|with) (?:` + person + `|` + boss + `)` + end),
	// "I want a human", "I need a real person", "I'd like to speak to someone"
	regexp.MustCompile(`\b(?:want|need|would like|'d like|request|demand|prefer|get me|give me|find me) ` +
		`(?:to (?:talk|speak|chat) (?:to|with) )?` + person + end),
	// "is there a human", "can I get a person", "are you a real person? I want someone"
	regexp.MustCompile(`\b(?:is there|are there|can i get|could i get|can i have|could i have|may i have|can you get|could you get) ` +
		person + end),
	// the whole message names a person: "human please", "agent!", "representative"
	regexp.MustCompile(`^(?:` + person + `|` + boss + `)(?: please| pls| now| asap)?[.!?]*$`),
	// "escalate this", "escalate to a human"
	regexp.MustCompile(`\bescalate (?:this|my (?:case|request|issue|ticket)|it)` + end),
}

// negations before a request within its sentence make it none ("I don't
// want to talk to a human").
var negation = regexp.MustCompile(`\b(?:don't|dont|do not|doesn't|does not|no need|never|not|won't|will not|no)\b`)

// AsksForHuman reports whether the user's message asks for a person instead
// of the assistant, in one of several phrasings (English). Requests in other
// words or languages are left to the keywords and to the model, which can
// call escalate_to_human.
func AsksForHuman(text string) bool {
	t := normalize(text)
	if t == "" {
		return false
	}
	for _, re := range askPatterns {
		for _, loc := range re.FindAllStringIndex(t, -1) {
			sentence := t[:loc[0]]
			if i := strings.LastIndexAny(sentence, ".!?;"); i >= 0 {
				sentence = sentence[i+1:]
			}
			if !negation.MatchString(sentence) {
				return true
			}
		}
	}
	return false
}

// unresolvedPatterns recognise an assistant reply that admits it could not
// help.
var unresolvedPatterns = regexp.MustCompile(`\b(?:` +
	`i (?:don't|do not|dont) (?:know|have (?:an answer|that information|this information|the information|enough information|any information|access))|` +
	`i'm not sure|i am not sure|i'm not able to|i am not able to|i'm unable to|i am unable to|` +
	`i (?:can't|cannot|can not|couldn't|could not) (?:help|answer|find|assist|do that|access)|` +
	`(?:that's|that is|this is) (?:beyond|outside) (?:my|what i)|` +
	`i have no (?:information|answer|way)|` +
	`no (?:information|answer) (?:is )?(?:available|found)` +
	`)`)

// Unresolved reports whether the assistant's reply says it could not
// resolve the user's message ("I don't know", "I can't help with that", the
// platform's "I don't have an answer to that.").
func Unresolved(reply string) bool {
	t := normalize(reply)
	return t == "" || unresolvedPatterns.MatchString(t)
}

// Repeated reports whether the user's message repeats their previous one
// (ignoring case, spacing and punctuation): asked again, it was not resolved.
func Repeated(previous, current string) bool {
	p, c := bare(previous), bare(current)
	return c != "" && p == c
}

func bare(s string) string {
	s = strings.Map(func(r rune) rune {
		if isWordRune(r) {
			return r
		}
		return ' '
	}, normalize(s))
	return strings.Join(strings.Fields(s), " ")
}
