package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newDev() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run the HTTP server and the worker in one process, for local use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := start(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Bootstrap(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "\n  Portal:          %s\n  Temporal Web UI: %s/namespaces/%s/workflows\n\n",
				a.Config.PublicURL, a.Config.TemporalUIURL, a.Config.TemporalNamespace)
			return runParts(cmd.Context(), a, true, true)
		},
	}
}
