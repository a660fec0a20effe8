package authz

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	e, err := New()
	require.NoError(t, err)
	own, other := uuid.New(), uuid.New()
	platform := &Principal{UserID: uuid.New(), Role: "platform_admin"}
	admin := &Principal{UserID: uuid.New(), TenantID: own, Role: "customer_admin"}
	operator := &Principal{UserID: uuid.New(), TenantID: own, Role: "customer_operator"}

	cases := []struct {
		name   string
		p      *Principal
		tenant string
		perm   Perm
		want   Decision
	}{
		{"anonymous public", nil, "", Public, Allow},
		{"anonymous private", nil, own.String(), Read(ObjAgents), Unauthenticated},
		{"platform admin anywhere", platform, other.String(), Write(ObjAgents), Allow},
		{"platform admin creates tenants", platform, "", Write(ObjTenants), Allow},
		{"admin writes own agents", admin, own.String(), Write(ObjAgents), Allow},
		{"admin reads other tenant", admin, other.String(), Read(ObjAgents), NotFound},
		{"admin lists all tenants", admin, "", Read(ObjTenants), Forbidden},
		{"admin creates tenant", admin, "", Write(ObjTenants), Forbidden},
		{"admin platform views", admin, "", Read(ObjPlatform), Forbidden},
		{"operator reads own agents", operator, own.String(), Read(ObjAgents), Allow},
		{"operator reads conversations", operator, own.String(), Read(ObjConversations), Allow},
		{"operator writes agents", operator, own.String(), Write(ObjAgents), Forbidden},
		{"operator reads users", operator, own.String(), Read(ObjUsers), Forbidden},
		{"operator reads channels", operator, own.String(), Read(ObjChannels), Forbidden},
		{"operator other tenant", operator, other.String(), Read(ObjAgents), NotFound},
		{"operator own tokens", operator, "", Write(ObjSelf), Allow},
		{"malformed tenant id", admin, "not-a-uuid", Read(ObjAgents), NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, e.Decide(tc.p, tc.tenant, tc.perm))
		})
	}
	require.True(t, e.Can(*admin, Write(ObjAgents)))
	require.False(t, e.Can(*operator, Write(ObjAgents)))
}
