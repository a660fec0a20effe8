package main

import (
	"github.com/spf13/cobra"
)

func newServe() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP server: REST API, webhooks, portal, health and metrics",
		Long: `Run the HTTP server on KONSTRUCT_HTTP_ADDR. It accepts webhooks from Slack,
WhatsApp and Stripe, serves the REST API under /api/v1 and the admin portal at /,
and hands conversations to Temporal. Run "konstruct worker" alongside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := start(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Bootstrap(cmd.Context()); err != nil {
				return err
			}
			return runParts(cmd.Context(), a, true, false)
		},
	}
}
