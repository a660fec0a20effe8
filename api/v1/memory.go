package v1

import (
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/store"
)

// forgetEndUser deletes an end user's long-term memory in the tenant — every
// remembered message and conversation summary, embedded or not, with every
// agent — and every image they sent, and records a memory.forget audit event
// in the same transaction.
// The conversations' transcripts stay (they are the tenant's records, listed
// under /conversations); what the agents can recall goes.
func (a *API) forgetEndUser(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	ref := c.Param("user_ref")
	if ref == "" || len(ref) > 300 || !utf8.ValidString(ref) {
		return apperr.Invalid("user_ref", "must be the channel's user ID (1 to 300 bytes of UTF-8), e.g. a Slack user ID such as U0123ABCD")
	}
	for _, r := range ref {
		if unicode.IsControl(r) {
			return apperr.Invalid("user_ref", "must not contain control characters")
		}
	}
	ctx := c.Request.Context()
	var msgs, sums, media int
	err = a.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := accounts.RequireTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		var err error
		if msgs, sums, err = tx.ForgetEndUser(ctx, ref); err != nil {
			return err
		}
		if media, err = tx.ForgetEndUserMedia(ctx, ref); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "user:" + principal(c).UserID.String(), Action: store.AuditMemoryForget,
			TargetType: "end_user", TargetID: ref, Data: map[string]any{"deleted_messages": msgs, "deleted_summaries": sums,
				"deleted_media": media}})
	})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"user_ref": ref, "deleted_messages": msgs, "deleted_summaries": sums, "deleted_media": media})
	return nil
}
