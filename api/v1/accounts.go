package v1

// A tenant's users and invitations, through the same services as the
// portal's Team page.

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/api/apiutil"
	"github.com/konstruct/konstruct/internal/accounts"
	"github.com/konstruct/konstruct/internal/invitations"
	"github.com/konstruct/konstruct/internal/store"
)

// userJSON never carries the password hash.
type userJSON struct {
	ID          string  `json:"id"`
	TenantID    *string `json:"tenant_id"`
	Email       string  `json:"email"`
	Name        string  `json:"name"`
	Role        string  `json:"role"`
	CreatedAt   string  `json:"created_at"`
	LastLoginAt *string `json:"last_login_at"`
	Disabled    bool    `json:"disabled"`
}

func userOut(u store.User) userJSON {
	out := userJSON{ID: u.ID.String(), Email: u.Email, Name: u.Name, Role: u.Role, CreatedAt: ts(u.CreatedAt),
		LastLoginAt: tsPtr(u.LastLoginAt), Disabled: u.DisabledAt != nil}
	if u.TenantID != nil {
		s := u.TenantID.String()
		out.TenantID = &s
	}
	return out
}

func (a *API) listUsers(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	list, err := a.Accounts.ListUsers(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	out := make([]userJSON, 0, len(list))
	for _, u := range list {
		out = append(out, userOut(u))
	}
	c.JSON(http.StatusOK, gin.H{"users": out})
	return nil
}

type createUserRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// createUser adds a member with a password (automation). People are usually
// invited instead, so they choose their own password.
func (a *API) createUser(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req createUserRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	u, err := a.Accounts.CreateUser(c.Request.Context(), principal(c), tenantID, accounts.CreateUserInput(req))
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, userOut(u))
	return nil
}

type updateUserRequest struct {
	Name *string `json:"name"`
	Role *string `json:"role"`
}

func (a *API) updateUser(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	userID, err := pathID(c, "user_id", "user")
	if err != nil {
		return err
	}
	var req updateUserRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	u, err := a.Accounts.UpdateUser(c.Request.Context(), principal(c), tenantID, userID,
		accounts.UserUpdate{Name: req.Name, Role: req.Role})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, userOut(u))
	return nil
}

func (a *API) deleteUser(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	userID, err := pathID(c, "user_id", "user")
	if err != nil {
		return err
	}
	if err := a.Accounts.RemoveUser(c.Request.Context(), principal(c), tenantID, userID); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

type invitationJSON struct {
	ID          string  `json:"id"`
	TenantID    string  `json:"tenant_id"`
	Email       string  `json:"email"`
	Role        string  `json:"role"`
	Status      string  `json:"status"` // pending | expired | accepted | revoked
	InvitedBy   *string `json:"invited_by"`
	InviterName string  `json:"inviter_name"`
	CreatedAt   string  `json:"created_at"`
	ExpiresAt   string  `json:"expires_at"`
	SentAt      *string `json:"sent_at"`
	SendCount   int     `json:"send_count"`
	// EmailSent answers creation and resend: false when the email could not
	// be delivered (the invitation exists; resend it).
	EmailSent *bool `json:"email_sent,omitempty"`
}

func invitationOut(i store.Invitation) invitationJSON {
	out := invitationJSON{ID: i.ID.String(), TenantID: i.TenantID.String(), Email: i.Email, Role: i.Role,
		Status: i.State(time.Now()), InviterName: i.InviterName, CreatedAt: ts(i.CreatedAt), ExpiresAt: ts(i.ExpiresAt),
		SentAt: tsPtr(i.SentAt), SendCount: i.SendCount}
	if i.InvitedBy != nil {
		s := i.InvitedBy.String()
		out.InvitedBy = &s
	}
	return out
}

func outcomeOut(o invitations.Outcome) invitationJSON {
	out := invitationOut(o.Invitation)
	sent := o.Delivered
	out.EmailSent = &sent
	return out
}

func (a *API) listInvitations(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	list, err := a.Invitations.List(c.Request.Context(), tenantID)
	if err != nil {
		return err
	}
	out := make([]invitationJSON, 0, len(list))
	for _, i := range list {
		out = append(out, invitationOut(i))
	}
	c.JSON(http.StatusOK, gin.H{"invitations": out})
	return nil
}

type createInvitationRequest struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

func (a *API) createInvitation(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	var req createInvitationRequest
	if err := apiutil.Decode(c, &req); err != nil {
		return err
	}
	out, err := a.Invitations.Invite(c.Request.Context(), principal(c), tenantID, req.Email, req.Role)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, outcomeOut(out))
	return nil
}

func (a *API) resendInvitation(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "invitation_id", "invitation")
	if err != nil {
		return err
	}
	out, err := a.Invitations.Resend(c.Request.Context(), principal(c), tenantID, id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, outcomeOut(out))
	return nil
}

func (a *API) revokeInvitation(c *gin.Context) error {
	tenantID, err := pathID(c, "tenant_id", "tenant")
	if err != nil {
		return err
	}
	id, err := pathID(c, "invitation_id", "invitation")
	if err != nil {
		return err
	}
	if _, err := a.Invitations.Revoke(c.Request.Context(), principal(c), tenantID, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
