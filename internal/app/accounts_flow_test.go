package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Changes to a person take effect at their next request: a role change, a
// removal, a suspended organisation, a changed password.
func TestAccountChangesApplyAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.browser()
	home := admin.signUp("ada@acme.test", "Ada", "Acme")
	apiAdmin := h.api("ada@acme.test", "Str0ng-Passphrase!")
	var created struct {
		ID string `json:"id"`
	}
	var errBody string
	status := apiAdmin.call("POST", "/api/v1/tenants/"+tenantOf(home).String()+"/users",
		map[string]string{"email": "otto@acme.test", "name": "Otto", "password": "Quiet-Observer-2024!", "role": "customer_operator"}, &created)
	require.Equal(t, http.StatusCreated, status)

	// A deep link survives the detour through sign-in.
	otto := h.browser()
	p := otto.get(home + "/usage?days=7")
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, "/sign-in?next="+url.QueryEscape(home+"/usage?days=7"), p.Location)
	otto.get(p.Location)
	p = otto.post("/sign-in", url.Values{"email": {"otto@acme.test"}, "password": {"Quiet-Observer-2024!"}, "next": {home + "/usage?days=7"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Equal(t, home+"/usage?days=7", p.Location)
	otto.get(p.Location)
	p = otto.post("/sign-out", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	otto.get("/sign-in")
	p = otto.post("/sign-in", url.Values{"email": {"otto@acme.test"}, "password": {"Quiet-Observer-2024!"}, "next": {"//evil.example/x"}})
	require.Equal(t, home, p.Location, "only local paths are followed after sign-in")
	otto.get(p.Location)
	require.Equal(t, http.StatusForbidden, otto.get(home+"/agents/new").Status)
	// Promoted: the designer opens on the next request.
	require.Equal(t, http.StatusSeeOther, admin.post(home+"/users/"+created.ID+"/role", url.Values{"role": {"customer_admin"}}).Status)
	require.Equal(t, http.StatusOK, otto.get(home+"/agents/new").Status)
	p = otto.get(home)
	require.Contains(t, p.Body, `<span class="badge badge-role">Admin</span>`)
	// Demoted again.
	require.Equal(t, http.StatusSeeOther, admin.post(home+"/users/"+created.ID+"/role", url.Values{"role": {"customer_operator"}}).Status)
	require.Equal(t, http.StatusForbidden, otto.get(home+"/agents/new").Status)

	// Nobody changes their own role or removes themselves; the last admin stays.
	p = admin.post(home+"/users/"+admin.userID(t, h, "ada@acme.test")+"/delete", nil)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, admin.get(p.Location).Body, "You cannot remove yourself")
	status = apiAdmin.call("PATCH", "/api/v1/tenants/"+tenantOf(home).String()+"/users/"+admin.userID(t, h, "ada@acme.test"),
		map[string]string{"role": "customer_operator"}, &errBody)
	require.Equal(t, http.StatusConflict, status, errBody)
	require.Contains(t, errBody, "cannot change your own role")

	// Password change ends the other sessions, not this one.
	second := h.browser()
	second.signIn("ada@acme.test", "Str0ng-Passphrase!")
	admin.get("/account")
	p = admin.post("/account/password", url.Values{"current_password": {"Str0ng-Passphrase!"}, "new_password": {"An0ther-Passphrase!"},
		"confirm_password": {"An0ther-Passphrase!"}})
	require.Equal(t, http.StatusSeeOther, p.Status, p.Body)
	admin.get(p.Location)
	require.Equal(t, http.StatusOK, admin.get(home).Status, "this browser stays signed in")
	p = second.get(home)
	require.Equal(t, http.StatusSeeOther, p.Status, "the other browser was signed out")
	require.Contains(t, second.get(p.Location).Body, "Your password was changed")

	// Removed: signed out at the next request.
	require.Equal(t, http.StatusSeeOther, admin.post(home+"/users/"+created.ID+"/delete", nil).Status)
	p = otto.get(home)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, otto.get(p.Location).Body, "Your account no longer exists")

	// Suspended: everyone is out, and sign-in says why.
	root := h.browser()
	root.signIn(rootEmail, rootPassword)
	p = root.post("/admin/tenants/"+tenantOf(home).String()+"/status", url.Values{"status": {"suspended"}})
	require.Equal(t, http.StatusSeeOther, p.Status)
	p = admin.get(home)
	require.Equal(t, http.StatusSeeOther, p.Status)
	require.Contains(t, admin.get(p.Location).Body, "Your organisation is suspended")
	admin.get("/sign-in")
	p = admin.post("/sign-in", url.Values{"email": {"ada@acme.test"}, "password": {"An0ther-Passphrase!"}})
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Contains(t, p.Body, "Your organisation is suspended")
	// The platform admin can still look inside, and reactivate it.
	require.Equal(t, http.StatusOK, root.get(home).Status)
	require.Equal(t, http.StatusSeeOther, root.post("/admin/tenants/"+tenantOf(home).String()+"/status", url.Values{"status": {"active"}}).Status)
	admin.signIn("ada@acme.test", "An0ther-Passphrase!")

	// The activity log recorded it all.
	p = admin.get(home + "/activity")
	for _, want := range []string{"created the organisation Acme", "added otto@acme.test as Operator",
		"changed otto@acme.test from Operator to Admin", "changed their password", "removed otto@acme.test from the team",
		"suspended the organisation", "reactivated the organisation"} {
		require.Contains(t, p.Body, want)
	}
}

func (b *browser) userID(t *testing.T, h *harness, email string) string {
	t.Helper()
	var id string
	apiRoot := h.api(rootEmail, rootPassword)
	var out struct {
		Users []struct{ ID, Email string } `json:"users"`
	}
	var tenants struct {
		Tenants []struct{ ID string } `json:"tenants"`
	}
	require.Equal(t, http.StatusOK, apiRoot.call("GET", "/api/v1/tenants", nil, &tenants))
	for _, ten := range tenants.Tenants {
		require.Equal(t, http.StatusOK, apiRoot.call("GET", "/api/v1/tenants/"+ten.ID+"/users", nil, &out))
		for _, u := range out.Users {
			if u.Email == email {
				id = u.ID
			}
		}
	}
	require.NotEmpty(t, id, email)
	return id
}

// Sign-in attempts are rate-limited per email and per address; the form says
// when to try again.
func TestSignInIsRateLimited(t *testing.T) {
	h := newHarness(t, map[string]string{"KONSTRUCT_RATE_LIMIT_LOGIN_PER_MINUTE": "3"})
	b := h.browser()
	b.get("/sign-in")
	email := "victim-" + time.Now().Format("150405.000000") + "@acme.test"
	var p page
	for i := 0; i < 8; i++ {
		p = b.post("/sign-in", url.Values{"email": {email}, "password": {"wrong password " + time.Now().String()}})
		if p.Status == http.StatusTooManyRequests {
			break
		}
		require.Equal(t, http.StatusUnprocessableEntity, p.Status)
		require.Contains(t, p.Body, "That email and password do not match an account")
	}
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.Contains(t, p.Body, "Too many sign-in attempts. For your security, try again in")
	require.NotEmpty(t, p.Header.Get("Retry-After"))
}

// The REST API manages users and invitations with the same rules as the
// portal, and never returns password hashes or tokens.
func TestUsersAndInvitationsAPI(t *testing.T) {
	h := newHarness(t, nil)
	home := h.browser().signUp("ada@acme.test", "Ada", "Acme")
	tenant := tenantOf(home).String()
	api := h.api("ada@acme.test", "Str0ng-Passphrase!")
	base := "/api/v1/tenants/" + tenant

	var users struct {
		Users []map[string]any `json:"users"`
	}
	require.Equal(t, http.StatusOK, api.call("GET", base+"/users", nil, &users))
	require.Len(t, users.Users, 1)
	require.Equal(t, "customer_admin", users.Users[0]["role"])
	require.NotContains(t, users.Users[0], "password_hash")

	var inv map[string]any
	require.Equal(t, http.StatusCreated, api.call("POST", base+"/invitations", map[string]string{"email": "Otto@Acme.test", "role": "customer_operator"}, &inv))
	require.Equal(t, "otto@acme.test", inv["email"])
	require.Equal(t, "pending", inv["status"])
	require.Equal(t, true, inv["email_sent"])
	require.NotContains(t, inv, "token")
	require.NotContains(t, inv, "token_hash")
	first := h.smtp.Wait(t, "otto@acme.test", 5*time.Second)

	var errBody string
	require.Equal(t, http.StatusUnprocessableEntity, api.call("POST", base+"/invitations", map[string]string{"email": "otto@acme.test", "role": "customer_operator"}, &errBody))
	require.Contains(t, errBody, "already pending")
	require.Equal(t, http.StatusUnprocessableEntity, api.call("POST", base+"/invitations", map[string]string{"email": "ada@acme.test", "role": "customer_admin"}, &errBody))
	require.Contains(t, errBody, "already has a Konstruct account")
	require.Equal(t, http.StatusUnprocessableEntity, api.call("POST", base+"/invitations", map[string]string{"email": "x@acme.test", "role": "platform_admin"}, &errBody))
	require.Contains(t, errBody, `"field":"role"`)

	var resent map[string]any
	require.Equal(t, http.StatusOK, api.call("POST", base+"/invitations/"+inv["id"].(string)+"/resend", nil, &resent))
	second := h.smtp.Wait(t, "otto@acme.test", 5*time.Second)
	oldLink, newLink := inviteLinkRE.FindString(first.Text), inviteLinkRE.FindString(second.Text)
	require.NotEqual(t, oldLink, newLink)
	require.Equal(t, http.StatusNotFound, h.browser().get(strings.TrimPrefix(oldLink, h.URL)).Status, "the resent invitation's old link died")

	var list struct {
		Invitations []map[string]any `json:"invitations"`
	}
	require.Equal(t, http.StatusOK, api.call("GET", base+"/invitations", nil, &list))
	require.Len(t, list.Invitations, 1)
	require.Equal(t, float64(2), list.Invitations[0]["send_count"])

	require.Equal(t, http.StatusNoContent, api.call("DELETE", base+"/invitations/"+inv["id"].(string), nil, nil))
	require.Equal(t, http.StatusNotFound, api.call("DELETE", base+"/invitations/"+inv["id"].(string), nil, &errBody))
	require.Equal(t, http.StatusGone, h.browser().get(strings.TrimPrefix(newLink, h.URL)).Status)

	// Users: create, rename, change role, remove.
	var u map[string]any
	require.Equal(t, http.StatusUnprocessableEntity, api.call("POST", base+"/users", map[string]string{"email": "bob@acme.test", "password": "short", "role": "customer_operator"}, &errBody))
	require.Contains(t, errBody, `"field":"password"`)
	require.Equal(t, http.StatusCreated, api.call("POST", base+"/users", map[string]string{"email": "bob@acme.test", "name": "Bob", "password": "Builder-Can-Fix-It-1", "role": "customer_operator"}, &u))
	id := u["id"].(string)
	require.Equal(t, http.StatusOK, api.call("PATCH", base+"/users/"+id, map[string]string{"role": "customer_admin", "name": "Robert"}, &u))
	require.Equal(t, "customer_admin", u["role"])
	require.Equal(t, "Robert", u["name"])
	require.Equal(t, http.StatusBadRequest, api.call("PATCH", base+"/users/"+id, map[string]string{"password_hash": "x"}, &errBody))
	require.Equal(t, http.StatusNoContent, api.call("DELETE", base+"/users/"+id, nil, nil))
	require.Equal(t, http.StatusNotFound, api.call("DELETE", base+"/users/"+id, nil, &errBody))

	// Operators read nothing here, and change nothing.
	require.Equal(t, http.StatusCreated, api.call("POST", base+"/users", map[string]string{"email": "op@acme.test", "password": "Operator-Pass-Word-9", "role": "customer_operator"}, &u))
	op := h.api("op@acme.test", "Operator-Pass-Word-9")
	require.Equal(t, http.StatusForbidden, op.call("GET", base+"/users", nil, &errBody))
	require.Equal(t, http.StatusForbidden, op.call("POST", base+"/invitations", map[string]string{"email": "z@acme.test", "role": "customer_admin"}, &errBody))
	require.Equal(t, http.StatusForbidden, op.call("PATCH", base+"/users/"+u["id"].(string), map[string]string{"role": "customer_admin"}, &errBody))
}
