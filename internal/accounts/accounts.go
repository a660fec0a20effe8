// Package accounts holds the rules for people and organisations, shared by
// the portal and the REST API: self-serve sign-up, a tenant's members and
// their roles, one's own profile and password, and the platform admin's
// tenant lifecycle (create, rename, suspend, delete). Every change writes an
// audit event in the same transaction.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"

	"github.com/konstruct/konstruct/internal/apperr"
	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/store"
)

// Service carries out account changes.
type Service struct {
	Store  *store.Store
	Logger *slog.Logger
}

// Actor is how an audit event names the principal.
func Actor(p authz.Principal) string { return "user:" + p.UserID.String() }

// SignUpInput is the self-serve sign-up form.
type SignUpInput struct {
	Email        string
	Name         string
	Password     string
	Organisation string
}

// ErrEmailTaken is the message for an address that already has an account.
const ErrEmailTaken = "an account with this email already exists; sign in instead"

// SignUp creates a tenant and its first customer admin in one transaction.
// Invalid input comes back as apperr.Fields naming every bad field.
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (store.User, store.Tenant, error) {
	var errs apperr.Fields
	email, msg := NormaliseEmail(in.Email)
	if msg != "" {
		errs.Add("email", msg)
	}
	name, msg := NormaliseText(in.Name, MaxName, true)
	if msg != "" {
		errs.Add("name", msg)
	}
	org, msg := NormaliseText(in.Organisation, MaxTenantName, true)
	if msg != "" {
		errs.Add("organisation", msg)
	}
	if err := auth.ValidatePassword(in.Password, email); err != nil {
		errs.Add("password", passwordMessage(err))
	}
	if err := errs.Err(); err != nil {
		return store.User{}, store.Tenant{}, err
	}
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		return store.User{}, store.Tenant{}, err
	}
	// The tenant's ID is chosen first so the whole sign-up runs in its scope.
	id := uuid.New()
	var user store.User
	var tenant store.Tenant
	err = s.Store.WithTenant(ctx, id, func(tx *store.Tx) error {
		var err error
		if tenant, err = tx.CreateTenant(ctx, id, org); err != nil {
			return err
		}
		if user, err = tx.CreateUser(ctx, store.User{Email: email, Name: name, PasswordHash: hash,
			Role: store.RoleCustomerAdmin}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: "user:" + user.ID.String(), Action: "tenant.signup",
			TargetType: "tenant", TargetID: id.String(), Data: map[string]any{"name": org, "email": email}})
	})
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, store.Tenant{}, apperr.Fields{apperr.Invalid("email", ErrEmailTaken)}
	}
	if err != nil {
		return store.User{}, store.Tenant{}, fmt.Errorf("accounts: sign up: %w", err)
	}
	return user, tenant, nil
}

// passwordMessage strips the "weak password: " prefix for a form.
func passwordMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && errors.Is(err, auth.ErrWeakPassword) {
		return msg[i+2:]
	}
	return msg
}

// ListUsers returns a tenant's members, by email.
func (s *Service) ListUsers(ctx context.Context, tenantID uuid.UUID) ([]store.User, error) {
	var out []store.User
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		out, err = tx.ListUsers(ctx)
		return err
	})
	return out, err
}

// GetUser returns one member of a tenant.
func (s *Service) GetUser(ctx context.Context, tenantID, userID uuid.UUID) (store.User, error) {
	var u store.User
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		var err error
		u, err = tx.GetUser(ctx, userID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, notFound(err, "user")
	}
	return u, err
}

// CreateUserInput adds a member directly, with a password (automation; people
// are usually invited instead).
type CreateUserInput struct {
	Email    string
	Name     string
	Password string
	Role     string
}

// CreateUser adds a member to a tenant.
func (s *Service) CreateUser(ctx context.Context, actor authz.Principal, tenantID uuid.UUID, in CreateUserInput) (store.User, error) {
	var errs apperr.Fields
	email, msg := NormaliseEmail(in.Email)
	if msg != "" {
		errs.Add("email", msg)
	}
	name, msg := NormaliseText(in.Name, MaxName, false)
	if msg != "" {
		errs.Add("name", msg)
	}
	if !ValidTenantRole(in.Role) {
		errs.Add("role", "must be customer_admin or customer_operator")
	}
	if err := auth.ValidatePassword(in.Password, email); err != nil {
		errs.Add("password", passwordMessage(err))
	}
	if err := errs.Err(); err != nil {
		return store.User{}, err
	}
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		return store.User{}, err
	}
	var u store.User
	err = s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if _, err := tx.GetTenant(ctx, tenantID); err != nil {
			return err
		}
		if u, err = tx.CreateUser(ctx, store.User{Email: email, Name: name, PasswordHash: hash, Role: in.Role}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: Actor(actor), Action: "user.create", TargetType: "user",
			TargetID: u.ID.String(), Data: map[string]any{"email": email, "role": in.Role}})
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.User{}, apperr.Fields{apperr.Invalid("email", "this email address already has a Konstruct account")}
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, notFound(err, "tenant")
	case err != nil:
		return store.User{}, fmt.Errorf("accounts: create user: %w", err)
	}
	return u, nil
}

// UserUpdate changes a member; nil fields stay.
type UserUpdate struct {
	Name *string
	Role *string
}

// lockTenant serialises membership changes of one tenant, so two admins
// demoting each other at once cannot leave it without an admin.
func lockTenant(ctx context.Context, tx *store.Tx, tenantID uuid.UUID) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))`, tenantID.String())
	return err
}

// UpdateUser renames a member or changes their role. No one changes their own
// role, and a tenant keeps at least one admin.
func (s *Service) UpdateUser(ctx context.Context, actor authz.Principal, tenantID, userID uuid.UUID, up UserUpdate) (store.User, error) {
	var errs apperr.Fields
	var patch store.UserPatch
	if up.Name != nil {
		name, msg := NormaliseText(*up.Name, MaxName, false)
		if msg != "" {
			errs.Add("name", msg)
		}
		patch.Name = &name
	}
	if up.Role != nil {
		if !ValidTenantRole(*up.Role) {
			errs.Add("role", "must be customer_admin or customer_operator")
		}
		patch.Role = up.Role
	}
	if err := errs.Err(); err != nil {
		return store.User{}, err
	}
	var u store.User
	err := s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		cur, err := tx.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "user")
		}
		if patch.Role != nil && *patch.Role != cur.Role {
			if cur.ID == actor.UserID {
				return apperr.Conflict("you cannot change your own role; ask another admin")
			}
			if cur.Role == store.RoleCustomerAdmin {
				if err := keepAnAdmin(ctx, tx); err != nil {
					return err
				}
			}
		}
		if u, err = tx.UpdateUser(ctx, userID, patch); err != nil {
			return err
		}
		if patch.Role != nil && *patch.Role != cur.Role {
			if err := tx.AppendAudit(ctx, store.AuditEvent{Actor: Actor(actor), Action: "user.role_change", TargetType: "user",
				TargetID: userID.String(), Data: map[string]any{"email": cur.Email, "from": cur.Role, "to": *patch.Role}}); err != nil {
				return err
			}
		}
		if patch.Name != nil && *patch.Name != cur.Name {
			return tx.AppendAudit(ctx, store.AuditEvent{Actor: Actor(actor), Action: "user.rename", TargetType: "user",
				TargetID: userID.String(), Data: map[string]any{"email": cur.Email}})
		}
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

func keepAnAdmin(ctx context.Context, tx *store.Tx) error {
	n, err := tx.CountUsersWithRole(ctx, store.RoleCustomerAdmin)
	if err != nil {
		return err
	}
	if n <= 1 {
		return apperr.Conflict("an organisation needs at least one admin; make someone else an admin first")
	}
	return nil
}

// RemoveUser removes a member. No one removes themselves, and a tenant keeps
// at least one admin. Their sessions end at their next request; their API
// tokens go with them.
func (s *Service) RemoveUser(ctx context.Context, actor authz.Principal, tenantID, userID uuid.UUID) error {
	return s.Store.WithTenant(ctx, tenantID, func(tx *store.Tx) error {
		if err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		cur, err := tx.GetUser(ctx, userID)
		if err != nil {
			return notFound(err, "user")
		}
		if cur.ID == actor.UserID {
			return apperr.Conflict("you cannot remove yourself; ask another admin")
		}
		if cur.Role == store.RoleCustomerAdmin {
			if err := keepAnAdmin(ctx, tx); err != nil {
				return err
			}
		}
		if err := tx.DeleteUser(ctx, userID); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{Actor: Actor(actor), Action: "user.remove", TargetType: "user",
			TargetID: userID.String(), Data: map[string]any{"email": cur.Email, "role": cur.Role}})
	})
}

// scoped runs fn in the principal's own scope: its tenant, or the platform for
// a platform admin (who has no tenant).
func (s *Service) scoped(ctx context.Context, p authz.Principal, fn func(*store.Tx) error) error {
	if p.TenantID == uuid.Nil {
		return s.Store.WithPlatform(ctx, fn)
	}
	return s.Store.WithTenant(ctx, p.TenantID, fn)
}

// UpdateProfile changes one's own display name.
func (s *Service) UpdateProfile(ctx context.Context, p authz.Principal, name string) (store.User, error) {
	name, msg := NormaliseText(name, MaxName, true)
	if msg != "" {
		return store.User{}, apperr.Fields{apperr.Invalid("name", msg)}
	}
	var u store.User
	err := s.scoped(ctx, p, func(tx *store.Tx) error {
		var err error
		if u, err = tx.UpdateUser(ctx, p.UserID, store.UserPatch{Name: &name}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{TenantID: u.TenantID, Actor: Actor(p), Action: "user.profile_update",
			TargetType: "user", TargetID: p.UserID.String()})
	})
	return u, err
}

// ChangePassword replaces one's own password after checking the current one.
func (s *Service) ChangePassword(ctx context.Context, p authz.Principal, current, next, confirm string) (store.User, error) {
	var u store.User
	err := s.scoped(ctx, p, func(tx *store.Tx) error {
		var err error
		if u, err = tx.GetUser(ctx, p.UserID); err != nil {
			return err
		}
		var errs apperr.Fields
		if len(current) > auth.MaxPasswordLen || !auth.CheckPassword(u.PasswordHash, current) {
			errs.Add("current_password", "is not your current password")
		}
		if err := auth.ValidatePassword(next, u.Email); err != nil {
			errs.Add("new_password", passwordMessage(err))
		} else if next == current {
			errs.Add("new_password", "must differ from your current password")
		}
		if confirm != next {
			errs.Add("confirm_password", "does not match the new password")
		}
		if err := errs.Err(); err != nil {
			return err
		}
		hash, err := auth.HashPassword(next)
		if err != nil {
			return err
		}
		if u, err = tx.UpdateUser(ctx, p.UserID, store.UserPatch{PasswordHash: &hash}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, store.AuditEvent{TenantID: u.TenantID, Actor: Actor(p), Action: "user.password_change",
			TargetType: "user", TargetID: p.UserID.String()})
	})
	return u, err
}
