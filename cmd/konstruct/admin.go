package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/konstruct/konstruct/internal/auth"
	"github.com/konstruct/konstruct/internal/store"
)

func newAdmin() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administrative tasks: create the platform admin, issue API tokens",
	}
	var email, name string
	createAdmin := &cobra.Command{
		Use:     "create-admin --email EMAIL",
		Short:   "Create a platform admin; the password is read from standard input",
		Example: `  printf '%s' "$PASSWORD" | konstruct admin create-admin --email ops@example.com`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			if err := auth.ValidatePassword(password, email); err != nil {
				return err
			}
			a, err := start(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			hash, err := auth.HashPassword(password)
			if err != nil {
				return err
			}
			var u store.User
			err = a.Store.WithPlatform(cmd.Context(), func(tx *store.Tx) error {
				if u, err = tx.CreateUser(cmd.Context(), store.User{Email: email, Name: name, PasswordHash: hash, Role: store.RolePlatformAdmin}); err != nil {
					return err
				}
				return tx.AppendAudit(cmd.Context(), store.AuditEvent{Actor: "cli", Action: "user.create_platform_admin",
					TargetType: "user", TargetID: u.ID.String()})
			})
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("a user with email %s already exists", email)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created platform admin %s (%s)\n", u.Email, u.ID)
			return nil
		},
	}
	createAdmin.Flags().StringVar(&email, "email", "", "email address of the new admin (required)")
	createAdmin.Flags().StringVar(&name, "name", "Platform admin", "display name")
	_ = createAdmin.MarkFlagRequired("email")

	var tokenEmail, tokenName string
	createToken := &cobra.Command{
		Use:   "create-token --email EMAIL",
		Short: "Issue an API token for an existing user and print it (shown once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := start(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			var u store.User
			err = a.Store.WithPlatform(cmd.Context(), func(tx *store.Tx) error {
				u, err = tx.GetUserByEmail(cmd.Context(), tokenEmail)
				return err
			})
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user with email %s", tokenEmail)
			}
			if err != nil {
				return err
			}
			raw, tok, err := a.Auth.IssueToken(cmd.Context(), u, tokenName)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s for %s expires %s; it is not shown again\n",
				tok.ID, u.Email, tok.ExpiresAt.Format("2006-01-02"))
			return nil
		},
	}
	createToken.Flags().StringVar(&tokenEmail, "email", "", "email of the user the token acts as (required)")
	createToken.Flags().StringVar(&tokenName, "name", "cli", "a label for the token")
	_ = createToken.MarkFlagRequired("email")

	cmd.AddCommand(createAdmin, createToken)
	return cmd
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}
