package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// LLMKey is a tenant's own credentials for one LLM provider. Secret is the
// sealed key and URL (secrets.Box); BaseURL and Last4 are copies for display.
type LLMKey struct {
	TenantID   uuid.UUID
	Provider   string
	Secret     []byte
	BaseURL    string
	Last4      string
	Version    int
	ModelCount int
	CheckedAt  time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const llmKeyCols = `tenant_id, provider, secret, base_url, last4, version, model_count, checked_at, created_at, updated_at`

func scanLLMKey(row pgx.Row) (LLMKey, error) {
	var k LLMKey
	err := row.Scan(&k.TenantID, &k.Provider, &k.Secret, &k.BaseURL, &k.Last4, &k.Version, &k.ModelCount,
		&k.CheckedAt, &k.CreatedAt, &k.UpdatedAt)
	return k, mapErr(err)
}

// PutLLMKey stores the tenant's key for k.Provider, replacing (rotating) the
// one it had: the version rises, so workers build a new client for it.
// created reports whether the tenant had no key for the provider before.
func (t *Tx) PutLLMKey(ctx context.Context, k LLMKey) (out LLMKey, created bool, err error) {
	err = t.tx.QueryRow(ctx, `
		INSERT INTO tenant_llm_keys (tenant_id, provider, secret, base_url, last4, model_count)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, provider) DO UPDATE SET
			secret = EXCLUDED.secret, base_url = EXCLUDED.base_url, last4 = EXCLUDED.last4,
			model_count = EXCLUDED.model_count, version = tenant_llm_keys.version + 1,
			checked_at = now(), updated_at = now()
		RETURNING `+llmKeyCols+`, (xmax = 0)`,
		t.scope(k.TenantID), k.Provider, k.Secret, k.BaseURL, k.Last4, k.ModelCount).
		Scan(&out.TenantID, &out.Provider, &out.Secret, &out.BaseURL, &out.Last4, &out.Version, &out.ModelCount,
			&out.CheckedAt, &out.CreatedAt, &out.UpdatedAt, &created)
	if err != nil {
		return LLMKey{}, false, fmt.Errorf("store: put llm key %s: %w", k.Provider, mapErr(err))
	}
	return out, created, nil
}

// ListLLMKeys returns the keys visible in this scope, by provider.
func (t *Tx) ListLLMKeys(ctx context.Context) ([]LLMKey, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+llmKeyCols+` FROM tenant_llm_keys ORDER BY provider`)
	if err != nil {
		return nil, fmt.Errorf("store: list llm keys: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LLMKey, error) { return scanLLMKey(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list llm keys: %w", err)
	}
	return out, nil
}

// DeleteLLMKey removes the tenant's key for provider.
func (t *Tx) DeleteLLMKey(ctx context.Context, provider string) (LLMKey, error) {
	k, err := scanLLMKey(t.tx.QueryRow(ctx, `DELETE FROM tenant_llm_keys WHERE provider = $1 RETURNING `+llmKeyCols, provider))
	if err != nil {
		return LLMKey{}, fmt.Errorf("store: delete llm key %s: %w", provider, err)
	}
	return k, nil
}

// LLMKeyAAD binds a sealed key to its tenant and provider: a ciphertext
// copied to another row does not open.
func LLMKeyAAD(tenantID uuid.UUID, provider string) []byte {
	return []byte("llm-key:" + tenantID.String() + ":" + provider)
}
