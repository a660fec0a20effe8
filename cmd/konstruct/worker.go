package main

import (
	"github.com/spf13/cobra"
)

func newWorker() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker that executes conversations",
		Long: `Run the Temporal worker on KONSTRUCT_TEMPORAL_TASK_QUEUE. It executes the
conversation workflows and their activities: LLM calls, tools, replies, records.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := start(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			return runParts(cmd.Context(), a, false, true)
		},
	}
}
