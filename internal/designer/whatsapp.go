package designer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/agents"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/channel/whatsapp"
	"github.com/konstruct/konstruct/internal/store"
)

// WhatsAppVerifier checks an access token against the Graph API before a
// number is connected (*whatsapp.Client does, with GET /{phone_number_id}).
type WhatsAppVerifier interface {
	PhoneNumber(ctx context.Context, token, phoneNumberID string) (whatsapp.PhoneNumber, error)
}

// WhatsAppConnection connects a WhatsApp Business number: its Graph API
// phone-number ID and WhatsApp Business Account ID, an access token (a
// system user's, with whatsapp_business_messaging), the agent that answers,
// and optionally the approved template sent outside the 24-hour window.
type WhatsAppConnection struct {
	PhoneNumberID    string
	WABAID           string
	AccessToken      string
	AgentID          string
	TemplateName     string
	TemplateLanguage string
	// BusinessFunction, when set, declares the agent's business function
	// (the setup wizard lets the operator do it in the same step). It is
	// saved with the connection, so a token Meta refuses saves neither.
	BusinessFunction string
	// NewAgent, when set, is created (AgentID is then ignored) with
	// BusinessFunction in the transaction that stores the connection: a new
	// organisation's first agent, from the setup wizard.
	NewAgent *agents.Input
}

var (
	graphID          = regexp.MustCompile(`^[0-9]{1,30}$`)
	templateName     = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	templateLanguage = regexp.MustCompile(`^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$`)
)

// validTemplate checks a template name and language, both or neither.
func validTemplate(errs *apperr.Fields, name, language string) {
	switch {
	case name == "" && language == "":
	case !templateName.MatchString(name):
		errs.Add("template_name", "must be the name of an approved template: lowercase letters, digits and underscores, such as we_have_a_reply")
	case !templateLanguage.MatchString(language):
		errs.Add("template_language", "must be the template's language code, such as en_US or de")
	}
}

// ConnectWhatsApp connects a WhatsApp number to one of the tenant's agents.
// The agent must declare its business function (Meta's policy allows no
// general-purpose assistant on WhatsApp), or in.BusinessFunction declares it
// (for in.NewAgent, it must). The Graph API is asked
// (GET /{phone_number_id} with the token) whether the token may use the
// number before anything is stored; the token is stored sealed, bound to the
// tenant and the number. Connecting a number again re-points and re-keys it
// (and clears a token error); a number another tenant connected first is a
// conflict. Invalid input comes back as apperr.Fields naming the fields; a
// Graph API that cannot be reached, as unavailable. The connection returned
// carries no token.
func (s *Service) ConnectWhatsApp(ctx context.Context, p authz.Principal, tenantID uuid.UUID, in WhatsAppConnection) (store.ChannelConnection, error) {
	number, waba := strings.TrimSpace(in.PhoneNumberID), strings.TrimSpace(in.WABAID)
	token := strings.TrimSpace(in.AccessToken)
	tplName, tplLang := strings.TrimSpace(in.TemplateName), strings.TrimSpace(in.TemplateLanguage)
	function := strings.TrimSpace(in.BusinessFunction)
	var errs apperr.Fields
	if !graphID.MatchString(number) {
		errs.Add("phone_number_id", "must be the number's Phone number ID from WhatsApp Manager or the app's API Setup page (digits, such as 106540352242922), not the phone number itself")
	}
	if !graphID.MatchString(waba) {
		errs.Add("waba_id", "must be the WhatsApp Business Account ID (digits, such as 102290129340398)")
	}
	if token == "" || len(token) > 2048 || strings.ContainsAny(token, " \t\r\n") {
		errs.Add("access_token", "must be an access token for the WhatsApp Business Account (a system user token with whatsapp_business_messaging)")
	}
	var agentID uuid.UUID
	var newAgent agents.Input
	if in.NewAgent == nil {
		var err error
		if agentID, err = uuid.Parse(strings.TrimSpace(in.AgentID)); err != nil {
			errs.Add("agent_id", "must be the ID of one of this tenant's agents")
		}
		if n := utf8.RuneCountInString(function); n > agents.MaxBusinessFunction || !utf8.ValidString(function) || strings.ContainsRune(function, 0) {
			errs.Add("business_function", fmt.Sprintf("must be at most %d characters of text", agents.MaxBusinessFunction))
		}
	} else {
		newAgent = *in.NewAgent
		newAgent.BusinessFunction = function
		var fields apperr.Fields
		if err := agents.Validate(&newAgent, s.KnownTools); errors.As(err, &fields) {
			errs = append(errs, fields...)
		} else if err != nil {
			return store.ChannelConnection{}, err
		}
		if newAgent.BusinessFunction == "" && errs.Message("business_function") == "" {
			errs.Add("business_function", "is required: WhatsApp's policy allows only agents scoped to one business function")
		}
	}
	validTemplate(&errs, tplName, tplLang)
	if err := errs.Err(); err != nil {
		return store.ChannelConnection{}, err
	}
	if s.WhatsApp == nil || s.Secrets == nil {
		return store.ChannelConnection{}, errors.New("designer: connect WhatsApp: no Graph API client or secret box configured")
	}
	// The agent first: no call to Meta for a connection that cannot be made.
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		switch {
		case in.NewAgent != nil:
			return nil
		case function != "":
			_, err := tx.GetAgent(ctx, agentID)
			if errors.Is(err, store.ErrNotFound) {
				return apperr.Fields{apperr.Invalid("agent_id", "no such agent in this tenant").Wrap(err)}
			}
			return err
		}
		return requireBusinessFunction(ctx, tx, agentID)
	})
	if err != nil {
		return store.ChannelConnection{}, err
	}
	pn, err := s.WhatsApp.PhoneNumber(ctx, token, number)
	if err != nil {
		return store.ChannelConnection{}, graphRefusal(err)
	}
	if pn.ID != "" && pn.ID != number {
		return store.ChannelConnection{}, apperr.Fields{apperr.Invalid("phone_number_id", "the Graph API answered for number "+pn.ID+", not "+number)}
	}
	secret, err := s.Secrets.Seal([]byte(token), store.SecretAAD(tenantID, store.ChannelWhatsApp, number))
	if err != nil {
		return store.ChannelConnection{}, err
	}
	display := strings.TrimSpace(pn.VerifiedName)
	if pn.DisplayPhoneNumber != "" {
		display = strings.TrimSpace(display + " (" + pn.DisplayPhoneNumber + ")")
	}
	var conn store.ChannelConnection
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		switch {
		case in.NewAgent != nil:
			if err := s.checkPlan(ctx, tx, tenantID, PlanAgents); err != nil {
				return err
			}
			var a store.Agent
			apply(&a, newAgent)
			a, err := tx.CreateAgent(ctx, a)
			if err != nil {
				return err
			}
			agentID = a.ID
			if err := tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "agent.create", TargetType: "agent",
				TargetID: a.ID.String(), Data: map[string]any{"name": a.Name, "business_function": a.BusinessFunction}}); err != nil {
				return err
			}
		case function != "":
			if err := s.declareBusinessFunction(ctx, tx, p, agentID, function); err != nil {
				return err
			}
		default:
			if err := requireBusinessFunction(ctx, tx, agentID); err != nil {
				return err
			}
		}
		// Re-pointing a number this tenant already has takes no new place.
		if _, err := tx.GetChannelByExternalID(ctx, store.ChannelWhatsApp, number); errors.Is(err, store.ErrNotFound) {
			if err := s.checkPlan(ctx, tx, tenantID, PlanChannels); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		var err error
		conn, err = tx.UpsertChannelConnection(ctx, store.ChannelConnection{AgentID: agentID, Kind: store.ChannelWhatsApp,
			ExternalID: number, DisplayName: truncate(display, 200), Secret: secret, WABAID: waba,
			TemplateName: tplName, TemplateLanguage: tplLang})
		if errors.Is(err, store.ErrConflict) {
			return apperr.Conflict("this WhatsApp number is already connected to another Konstruct account").Wrap(err)
		}
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "channel.connect", TargetType: "channel",
			TargetID: conn.ID.String(), Data: map[string]any{"kind": store.ChannelWhatsApp, "phone_number_id": number,
				"waba_id": waba, "agent_id": agentID.String()}})
	})
	conn.Secret = nil
	if err != nil {
		return store.ChannelConnection{}, err
	}
	return conn, nil
}

// declareBusinessFunction sets an agent's business function, validated and
// audited as the Agent Designer's edits are.
func (s *Service) declareBusinessFunction(ctx context.Context, tx *store.Tx, p authz.Principal, agentID uuid.UUID, function string) error {
	cur, err := tx.GetAgent(ctx, agentID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Fields{apperr.Invalid("agent_id", "no such agent in this tenant").Wrap(err)}
	}
	if err != nil {
		return err
	}
	in := InputOf(cur)
	in.BusinessFunction = function
	if err := agents.Validate(&in, s.KnownTools); err != nil {
		return err
	}
	apply(&cur, in)
	if _, err := tx.UpdateAgent(ctx, cur); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "agent.update", TargetType: "agent",
		TargetID: agentID.String(), Data: map[string]any{"name": cur.Name, "business_function": in.BusinessFunction}})
}

// graphRefusal turns the Graph API's answer to the token check into what
// the operator is told.
func graphRefusal(err error) error {
	if whatsapp.IsTransient(err) {
		return apperr.Unavailable("the WhatsApp Graph API could not be reached to check the token; try again").Wrap(err)
	}
	var e *whatsapp.Error
	errors.As(err, &e)
	switch code := whatsapp.Code(err); {
	case whatsapp.IsTokenInvalid(err):
		return apperr.Fields{apperr.Invalid("access_token", "Meta refused this access token (it is invalid or has expired); generate a new one").Wrap(err)}
	case code == whatsapp.CodeInvalidParam:
		return apperr.Fields{apperr.Invalid("phone_number_id",
			"Meta knows no phone number with this ID that this token may use; check the Phone number ID and the token's WhatsApp Business Account").Wrap(err)}
	case code == 10 || (code >= 200 && code <= 299):
		return apperr.Fields{apperr.Invalid("access_token", "this token lacks the whatsapp_business_messaging permission for the number").Wrap(err)}
	case e != nil && e.Message != "":
		return apperr.Fields{apperr.Invalid("access_token", fmt.Sprintf("Meta refused the check (code %d): %s", code, truncate(e.Message, 300))).Wrap(err)}
	}
	return apperr.Fields{apperr.Invalid("access_token", "Meta refused the check of this token").Wrap(err)}
}

// requireBusinessFunction refuses an agent that cannot answer on WhatsApp.
func requireBusinessFunction(ctx context.Context, tx *store.Tx, agentID uuid.UUID) error {
	a, err := tx.GetAgent(ctx, agentID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Fields{apperr.Invalid("agent_id", "no such agent in this tenant").Wrap(err)}
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(a.BusinessFunction) == "" {
		return apperr.Fields{apperr.Invalid("business_function", "the agent "+a.Name+" has no business function: WhatsApp's policy "+
			"allows only agents scoped to one business function. Declare it (business_function) in the Agent Designer first")}
	}
	return nil
}

// requireNoWhatsApp refuses to clear the business function of an agent that
// answers on a WhatsApp number.
func requireNoWhatsApp(ctx context.Context, tx *store.Tx, agentID uuid.UUID) error {
	n, err := tx.CountAgentChannels(ctx, agentID, store.ChannelWhatsApp)
	if err != nil {
		return err
	}
	if n > 0 {
		return apperr.Fields{apperr.Invalid("business_function", "this agent answers on WhatsApp, whose policy requires a business function; "+
			"disconnect its WhatsApp number (or connect it to another agent) before clearing it")}
	}
	return nil
}

// SetWhatsAppTemplate sets the approved template a WhatsApp connection sends
// when a reply falls outside the 24-hour window (both empty: none; replies
// outside the window are then not sent).
func (s *Service) SetWhatsAppTemplate(ctx context.Context, p authz.Principal, tenantID, channelID uuid.UUID, name, language string) (store.ChannelConnection, error) {
	name, language = strings.TrimSpace(name), strings.TrimSpace(language)
	var errs apperr.Fields
	validTemplate(&errs, name, language)
	if err := errs.Err(); err != nil {
		return store.ChannelConnection{}, err
	}
	var ch store.ChannelConnection
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		cur, err := tx.GetChannel(ctx, channelID)
		if err != nil {
			return notFound(err, "channel")
		}
		if cur.Kind != store.ChannelWhatsApp {
			return apperr.Fields{apperr.Invalid("template_name", "only WhatsApp connections send templates")}
		}
		if ch, err = tx.SetChannelTemplate(ctx, channelID, name, language); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: actor(p), Action: "channel.update", TargetType: "channel",
			TargetID: channelID.String(), Data: map[string]any{"kind": cur.Kind, "template_name": name, "template_language": language}})
	})
	ch.Secret = nil
	return ch, err
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
