// Package konstruct holds the files at the repository's root that the
// binary embeds: the Slack app manifest (slack-app-manifest.yaml), which the
// portal serves filled in with KONSTRUCT_PUBLIC_URL and whose bot scopes the
// Slack install asks for.
package konstruct

import _ "embed"

// SlackAppManifest is slack-app-manifest.yaml, with ${KONSTRUCT_PUBLIC_URL}
// where the server's public URL goes.
//
//go:embed slack-app-manifest.yaml
var SlackAppManifest string
