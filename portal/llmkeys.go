package portal

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/llm"
	"github.com/konstruct/konstruct/internal/llmkeys"
	"github.com/konstruct/konstruct/internal/store"
)

// The Settings page's model keys: an organisation's own OpenAI, Anthropic
// and Ollama credentials, each checked with the provider before it is saved
// and shown only masked afterwards.

// providerView is one provider's row on the Settings page.
type providerView struct {
	Provider    string
	Label       string
	About       string
	KeyField    bool   // takes an API key
	URLField    string // "" none, "optional" or "required"
	URLHint     string
	KeyHint     string
	Key         *llmkeys.Key // the organisation's own, if any
	Platform    bool         // the platform has a key for this provider
	FormErrors  bool         // the submitted form below is this provider's
	Placeholder string
}

type settingsData struct {
	Providers []providerView
	Support   *supportData // where escalations go, and the SLA
}

func (p *Portal) settingsData(c *gin.Context, tenant *store.Tenant, failed string) (*settingsData, error) {
	keys, err := p.d.LLMKeys.List(c.Request.Context(), tenant.ID)
	if err != nil {
		return nil, err
	}
	support, err := p.supportSettings(c, tenant.ID)
	if err != nil {
		return nil, err
	}
	cfg := p.d.Config
	d := &settingsData{Support: support, Providers: []providerView{
		{Provider: llm.ProviderOpenAI, About: "GPT models, or any OpenAI-compatible server such as vLLM or LiteLLM.",
			KeyField: true, URLField: "optional", Placeholder: "sk-…",
			KeyHint:  "From platform.openai.com → API keys, or your compatible server's key.",
			URLHint:  "Only for an OpenAI-compatible server: its base URL, usually ending in /v1. Leave empty for OpenAI.",
			Platform: cfg.OpenAIAPIKey != "" || cfg.OpenAIBaseURL != ""},
		{Provider: llm.ProviderAnthropic, About: "Claude models, with your Anthropic account.", KeyField: true, Placeholder: "sk-ant-…",
			KeyHint: "From console.anthropic.com → API keys.", Platform: cfg.AnthropicAPIKey != ""},
		{Provider: llm.ProviderOllama, About: "Open models on your own Ollama server.", URLField: "required",
			URLHint:  "The server's address, such as http://ollama.example.com:11434. It must be reachable from Konstruct.",
			Platform: cfg.OllamaURL != ""},
	}}
	for i := range d.Providers {
		pv := &d.Providers[i]
		pv.Label = llm.ProviderLabel(pv.Provider)
		pv.FormErrors = pv.Provider == failed
		for j := range keys {
			if keys[j].Provider == pv.Provider {
				pv.Key = &keys[j]
			}
		}
	}
	return d, nil
}

func (p *Portal) settingsPage(c *gin.Context, tenant *store.Tenant, status int, form *Form, failed string) {
	d, err := p.settingsData(c, tenant, failed)
	if err != nil {
		p.fail(c, err)
		return
	}
	if form == nil {
		form = &Form{}
	}
	if form.Values == nil {
		form.Values = map[string]string{}
	}
	if _, ok := form.Values["name"]; !ok {
		form.Values["name"] = tenant.Name
	}
	for k, v := range supportForm(d.Support.Settings) {
		if _, ok := form.Values[k]; !ok {
			form.Values[k] = v
		}
	}
	p.render(c, status, "settings", &Page{Title: "Settings", Section: "settings", Tenant: tenant, Form: form, Data: d})
}

// llmKeyPut adds or replaces the organisation's key for a provider.
func (p *Portal) llmKeyPut(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	provider := c.Param("provider")
	in := llmkeys.Input{APIKey: c.PostForm("api_key"), BaseURL: c.PostForm("base_url")}
	k, created, err := p.d.LLMKeys.Put(c.Request.Context(), viewerOf(c).Principal, tenant.ID, provider, in)
	var fields apperr.Fields
	switch e := apperr.From(err); {
	case errors.As(err, &fields):
		// The key itself is never sent back; the URL is kept.
		p.settingsPage(c, tenant, http.StatusUnprocessableEntity, &Form{Errors: fields,
			Values:  map[string]string{"base_url": in.BaseURL},
			Message: "The " + llm.ProviderLabel(provider) + " key was not saved."}, provider)
	case err != nil && e.Status == http.StatusPaymentRequired:
		p.settingsPage(c, tenant, e.Status, &Form{Message: capitalise(e.Message) + "."}, provider)
	case err != nil:
		p.fail(c, err)
	default:
		verb := "Replaced"
		if created {
			verb = "Saved"
		}
		p.back(c, "/t/"+tenant.ID.String()+"/settings#model-keys", "success", verb+" your "+k.Label()+" key"+maskedSuffix(k)+
			": "+llm.ProviderLabel(provider)+" listed "+plural(k.ModelCount, "model", "models")+
			". Your agents use it from their next message.")
	}
}

func maskedSuffix(k llmkeys.Key) string {
	if m := k.Masked(); m != "" {
		return " " + m
	}
	return ""
}

// llmKeyDelete removes the organisation's key for a provider.
func (p *Portal) llmKeyDelete(c *gin.Context) {
	tenant, ok := p.tenantInView(c)
	if !ok {
		return
	}
	k, err := p.d.LLMKeys.Delete(c.Request.Context(), viewerOf(c).Principal, tenant.ID, c.Param("provider"))
	if err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/t/"+tenant.ID.String()+"/settings#model-keys", "success", "Removed your "+k.Label()+" key"+maskedSuffix(k)+
		". Your agents use the platform's "+k.Label()+" models again, where your plan includes them.")
}
