// Command kratos-orgs brings organizations and email invitations to a
// self-hosted Ory Kratos. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/orgs"
	"github.com/kratos-orgs/kratos-orgs/server"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr, os.Getenv).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kratos-orgs:", err)
		os.Exit(1)
	}
}

// newRoot builds the command tree; cobra parses flags and prints help.
func newRoot(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var cfgPath string
	root := &cobra.Command{
		Use:           "kratos-orgs",
		Short:         "Organizations and email invitations for Ory Kratos",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML); KRATOS_ORGS_* environment variables override it")

	load := func() (config.Config, error) { return config.Load(cfgPath, getenv) }
	open := func(ctx context.Context) (*server.Server, error) {
		cfg, err := load()
		if err != nil {
			return nil, err
		}
		return server.New(ctx, server.Options{Config: cfg, Logger: newLogger(cfg.Log, stderr)})
	}

	root.AddCommand(&cobra.Command{
		Use:   "serve",
		Short: "Run the public and admin listeners, the mail worker and the expiry sweeper",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			s, err := open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Run(ctx)
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "check-config",
		Short: "Validate the configuration and print the effective values (secrets masked)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := load()
			if err != nil {
				return err
			}
			if _, err := templates.New(cfg.Templates.Dir); err != nil {
				return err
			}
			out, err := yaml.Marshal(config.Masked(cfg))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "# configuration is valid\n%s", out)
			return nil
		},
	})

	tpl := &cobra.Command{Use: "templates", Short: "Work with mail and page templates"}
	tpl.AddCommand(&cobra.Command{
		Use:   "render NAME",
		Short: "Render a template with sample data (preview an override before deploying)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if cfg, err := load(); err == nil {
				dir = cfg.Templates.Dir
			} else if cfgPath != "" {
				return err
			}
			r, err := templates.New(dir)
			if err != nil {
				return err
			}
			return r.Render(stdout, args[0])
		},
	})
	root.AddCommand(tpl)

	orgsCmd := &cobra.Command{Use: "orgs", Short: "Manage organizations"}
	var slug, owner string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			o, err := s.Orgs.Create(cmd.Context(), orgs.CreateRequest{Name: args[0], Slug: slug, OwnerIdentityID: owner}, orgs.StateActive)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", o.ID, o.Slug, o.Name)
			return nil
		},
	}
	create.Flags().StringVar(&slug, "slug", "", "slug (default: derived from the name)")
	create.Flags().StringVar(&owner, "owner", "", "Kratos identity id of the first owner")
	orgsCmd.AddCommand(create, &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			cursor := ""
			for {
				page, err := s.Orgs.Store().List(cmd.Context(), cursor, 100)
				if err != nil {
					return err
				}
				for _, o := range page.Items {
					fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", o.ID, o.Slug, o.State, o.Name)
				}
				if page.NextCursor == "" {
					return nil
				}
				cursor = page.NextCursor
			}
		},
	})
	root.AddCommand(orgsCmd)

	var org, role, inviterName string
	var noEmail bool
	var ttl time.Duration
	invite := &cobra.Command{
		Use:   "invite --org ORG EMAIL...",
		Short: "Invite addresses to an organization (mail goes out through the outbox)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return errors.New("--org is required")
			}
			s, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			var failed int
			for _, email := range args {
				req := invites.InviteRequest{Email: email, Role: role}
				if inviterName != "" {
					req.Inviter = &invites.Inviter{Name: inviterName}
				}
				if ttl > 0 {
					d := invites.Duration(ttl)
					req.TTL = &d
				}
				send := !noEmail
				req.SendEmail = &send
				inv, _, err := s.Invites.Invite(cmd.Context(), org, req)
				if err != nil {
					failed++
					fmt.Fprintf(stderr, "%s\terror: %v\n", email, err)
					continue
				}
				line := []string{inv.ID, inv.Email, inv.Role, string(inv.Status)}
				if inv.AcceptURL != "" {
					line = append(line, inv.AcceptURL)
				}
				fmt.Fprintln(stdout, strings.Join(line, "\t"))
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d invitations failed", failed, len(args))
			}
			return nil
		},
	}
	invite.Flags().StringVar(&org, "org", "", "organization id or slug")
	invite.Flags().StringVar(&role, "role", "member", "role to grant")
	invite.Flags().StringVar(&inviterName, "inviter", "", "inviter display name shown in the mail")
	invite.Flags().DurationVar(&ttl, "ttl", 0, "how long the link is valid (default: invitations.ttl)")
	invite.Flags().BoolVar(&noEmail, "no-email", false, "print the accept link instead of mailing it")
	root.AddCommand(invite)
	return root
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
