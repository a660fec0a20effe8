package portal

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/konstruct/konstruct/internal/apperr"
)

func (p *Portal) accountPage(c *gin.Context) {
	v := viewerOf(c)
	p.render(c, http.StatusOK, "account", &Page{Title: "Your account", Section: "account",
		Form: &Form{Values: map[string]string{"name": v.User.Name}}})
}

func (p *Portal) updateProfile(c *gin.Context) {
	v := viewerOf(c)
	name := c.PostForm("name")
	_, err := p.d.Accounts.UpdateProfile(c.Request.Context(), v.Principal, name)
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.render(c, http.StatusUnprocessableEntity, "account", &Page{Title: "Your account", Section: "account",
			Form: &Form{Values: map[string]string{"name": name}, Errors: fields}})
	case err != nil:
		p.fail(c, err)
	default:
		p.back(c, "/account", "success", "Your profile was saved.")
	}
}

func (p *Portal) changePassword(c *gin.Context) {
	v := viewerOf(c)
	ctx := c.Request.Context()
	u, err := p.d.Accounts.ChangePassword(ctx, v.Principal, c.PostForm("current_password"), c.PostForm("new_password"),
		c.PostForm("confirm_password"))
	var fields apperr.Fields
	switch {
	case errors.As(err, &fields):
		p.render(c, http.StatusUnprocessableEntity, "account", &Page{Title: "Your account", Section: "account",
			Form: &Form{Values: map[string]string{"name": v.User.Name}, Errors: fields}})
		return
	case err != nil:
		p.fail(c, err)
		return
	}
	// Other sessions carry the old password's fingerprint and end at their
	// next request; this one moves to a new token with the new fingerprint.
	if err := p.startSession(ctx, u); err != nil {
		p.fail(c, err)
		return
	}
	p.back(c, "/account", "success", "Your password was changed. Other browsers signed in to your account were signed out.")
}
