package v1

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/llmkeys"
)

// llmKeyJSON shows a tenant's key masked: never the key itself.
type llmKeyJSON struct {
	Provider   string `json:"provider"`
	Masked     string `json:"masked_key"`
	BaseURL    string `json:"base_url"`
	Version    int    `json:"version"`
	ModelCount int    `json:"model_count"`
	CheckedAt  string `json:"checked_at"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

func llmKeyOut(k llmkeys.Key) llmKeyJSON {
	return llmKeyJSON{Provider: k.Provider, Masked: k.Masked(), BaseURL: k.BaseURL, Version: k.Version, ModelCount: k.ModelCount,
		CheckedAt: ts(k.CheckedAt), CreatedAt: ts(k.CreatedAt), UpdatedAt: ts(k.UpdatedAt)}
}

func (a *API) listLLMKeys(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	list, err := a.LLMKeys.List(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	out := make([]llmKeyJSON, 0, len(list))
	for _, k := range list {
		out = append(out, llmKeyOut(k))
	}
	c.JSON(http.StatusOK, gin.H{"llm_keys": out})
	return nil
}

// putLLMKey adds or rotates the tenant's key for a provider: 201 when the
// tenant had none, 200 when it replaced one. The provider is asked (its
// model list) before anything is stored.
func (a *API) putLLMKey(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req struct {
		APIKey  string `json:"api_key"`
		BaseURL string `json:"base_url"`
	}
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	k, created, err := a.LLMKeys.Put(c.Request.Context(), principal(c), tenantID, c.Param("provider"), llmkeys.Input(req))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, llmKeyOut(k))
	return nil
}

func (a *API) deleteLLMKey(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	if _, err := a.LLMKeys.Delete(c.Request.Context(), principal(c), tenantID, c.Param("provider")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
