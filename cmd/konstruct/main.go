// Command konstruct runs the Konstruct platform: the HTTP server (API,
// webhooks, portal), the Temporal worker, or both, plus migrations and admin
// tasks. Configuration comes from KONSTRUCT_* environment variables.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/konstruct/konstruct/internal/app"
	"github.com/konstruct/konstruct/internal/config"
	"github.com/konstruct/konstruct/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "konstruct:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "konstruct",
		Short: "Konstruct runs AI employees in Slack and WhatsApp",
		Long: `Konstruct is a platform for "AI employees": design an agent in the portal, connect
Slack and WhatsApp, and people talk to it where they already are. Every
conversation is a durable Temporal workflow.

Configuration is read from KONSTRUCT_* environment variables; see README.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServe(), newWorker(), newDev(), newMigrate(), newAdmin())
	return root
}

// setup loads the configuration and the logger; every long-running command starts here.
func setup() (config.Config, *slog.Logger, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return config.Config{}, nil, err
	}
	logger := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	slog.SetDefault(logger)
	return cfg, logger, nil
}

// start loads configuration and connects the platform's dependencies.
func start(ctx context.Context) (*app.App, error) {
	cfg, logger, err := setup()
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, logger)
}
