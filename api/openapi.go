package api

import _ "embed"

// OpenAPI is api/openapi.yaml: the contract of the REST API under /api/v1,
// the health and metrics endpoints and the Slack webhook. Tests validate
// every route and every response body against it, so it cannot drift from
// the handlers.
//
//go:embed openapi.yaml
var OpenAPI []byte
