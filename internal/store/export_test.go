package store

import "github.com/google/uuid"

// AuditQuery exposes the audit listing's SQL to the benchmark, which checks
// its plans.
func AuditQuery(f AuditFilter, tenantID uuid.UUID) (string, []any) { return f.query(tenantID) }
