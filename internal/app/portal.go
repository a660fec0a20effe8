package app

import "github.com/konstruct/konstruct/api"

// portal builds the admin portal's mount.
func (a *App) portal() api.Mount { return nil }
