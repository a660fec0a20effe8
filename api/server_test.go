package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/konstruct/konstruct/api"
	"github.com/konstruct/konstruct/api/apiutil"
	v1 "github.com/konstruct/konstruct/api/v1"
	"github.com/konstruct/konstruct/internal/authz"
	"github.com/konstruct/konstruct/internal/testkit/apitest"
)

type panicking struct{}

func (panicking) Mount(s *api.Server) {
	s.Registry.Handle(s.Public, http.MethodGet, "/api/v1/panic", authz.Public, nil, func(*gin.Context) {
		panic("boom: secret detail")
	})
	s.Registry.Handle(s.Public, http.MethodGet, "/api/v1/panic-after-write", authz.Public, nil, func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"ok": true})
		panic("late")
	})
}

// A handler that panics answers 500 with the JSON error envelope, without
// the panic's detail, and the server keeps serving.
func TestPanicIsA500(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	srv := api.New(api.Deps{
		Logger: s.App.Logger, Authz: s.App.Authz, Health: &api.Health{}, MaxBodyBytes: 1 << 20,
		V1: &v1.API{Store: s.App.Store, Auth: s.App.Auth, Logger: s.App.Logger},
	}, panicking{})

	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/panic", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	var e apiutil.ErrorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
	require.Equal(t, "internal", e.Error.Code)
	require.NotContains(t, rec.Body.String(), "secret detail")
	require.NoError(t, s.Spec.Validate("Error", rec.Body.Bytes()))

	// A panic after the answer started leaves that answer alone.
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/panic-after-write", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"ok":true}`, rec.Body.String())

	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code, "still serving")
}
