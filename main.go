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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kratos-orgs/kratos-orgs/config"
	kratosconf "github.com/kratos-orgs/kratos-orgs/config/kratos"
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

// cli holds what every command shares: the configuration path and the
// process' streams and environment.
type cli struct {
	cfgPath        string
	stdout, stderr io.Writer
	getenv         func(string) string
}

// newRoot builds the command tree; cobra parses flags and prints help.
func newRoot(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	root := &cobra.Command{
		Use:           "kratos-orgs",
		Short:         "Organizations and email invitations for Ory Kratos",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&c.cfgPath, "config", "c", "", "configuration file (YAML); KRATOS_ORGS_* environment variables override it")
	root.AddCommand(c.serveCmd(), c.checkConfigCmd(), c.kratosConfigCmd(), c.templatesCmd(), c.orgsCmd(), c.inviteCmd())
	root.AddCommand(c.reconcileCmd(), c.suppressionsCmd(), c.domainsCmd())
	root.AddCommand(c.configDocsCmd())
	root.AddCommand(c.auditCmd(), c.eventsCmd())
	return root
}

func (c *cli) load() (config.Config, error) { return config.Load(c.cfgPath, c.getenv) }

// open builds a server (Redis, Kratos, mail) from the configuration.
func (c *cli) open(ctx context.Context) (*server.Server, error) {
	cfg, err := c.load()
	if err != nil {
		return nil, err
	}
	return server.New(ctx, server.Options{Config: cfg, Logger: newLogger(cfg.Log, c.stderr)})
}

// withServer runs a command with the server the configuration builds
// (its Redis, Kratos and stores), closed when the command ends.
func (c *cli) withServer(run func(cmd *cobra.Command, args []string, s *server.Server) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := c.open(cmd.Context())
		if err != nil {
			return err
		}
		defer s.Close()
		return run(cmd, args, s)
	}
}

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the public and admin listeners, the mail worker and the expiry sweeper",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			s, err := c.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.Run(ctx)
		},
	}
}

func (c *cli) checkConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config",
		Short: "Validate the configuration and print the effective values (secrets masked)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			if _, err := templates.Load(server.TemplateOptions(cfg.Templates)); err != nil {
				return err
			}
			out, err := yaml.Marshal(config.Masked(cfg))
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "# configuration is valid\n%s", out)
			return nil
		},
	}
}

// configDocsCmd prints the README's configuration table; it needs no
// configuration, since it documents the defaults.
func (c *cli) configDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config-docs",
		Short: "Print the configuration keys as a markdown table: default, environment variable, meaning, and the rules between keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(c.stdout, config.Docs())
			return err
		},
	}
}

func (c *cli) orgsCmd() *cobra.Command {
	orgsCmd := &cobra.Command{Use: "orgs", Short: "Manage organizations"}
	var slug, owner, locale string
	var maxMembers int64
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization",
		Args:  cobra.ExactArgs(1),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			req := orgs.CreateRequest{Name: args[0], Slug: slug, OwnerIdentityID: owner, Locale: locale}
			if maxMembers != 0 {
				req.MaxMembers = &maxMembers
			}
			o, err := s.Orgs.Create(cmd.Context(), req, orgs.StateActive)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", o.ID, o.Slug, o.Name)
			return nil
		}),
	}
	create.Flags().StringVar(&slug, "slug", "", "slug (default: derived from the name)")
	create.Flags().StringVar(&owner, "owner", "", "Kratos identity id of the first owner")
	create.Flags().StringVar(&locale, "locale", "", "default locale of the organization's mail, BCP 47")

	create.Flags().Int64Var(&maxMembers, "max-members", 0, "seat limit: members plus pending invitations (default: unlimited)")
	orgsCmd.AddCommand(create, c.orgsSetLocaleCmd(), c.seatsCmd(), c.remindersCmd(), &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		RunE: c.withServer(func(cmd *cobra.Command, _ []string, s *server.Server) error {
			return listOrgs(cmd.Context(), s, c.stdout)
		}),
	})
	return orgsCmd
}

// orgsSetLocaleCmd is `kratos-orgs orgs set-locale ORG LOCALE`.
func (c *cli) orgsSetLocaleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set-locale ORG LOCALE",
		Short: "Set an organization's default mail locale (BCP 47; \"\" removes it)",
		Args:  cobra.ExactArgs(2),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			o, err := s.Orgs.Update(cmd.Context(), args[0], orgs.UpdateRequest{Locale: &args[1]})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", o.ID, o.Slug, o.Locale)
			return nil
		}),
	}
}

// seatsCmd shows an organization's seats, or sets its limit.
func (c *cli) seatsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "seats ORG [LIMIT|unlimited]",
		Short: "Show an organization's seats (limit, members, pending invitations), or set its max_members",
		Args:  cobra.RangeArgs(1, 2),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			var err error
			var o orgs.Organization
			if len(args) == 1 {
				o, err = s.Orgs.Store().Resolve(cmd.Context(), args[0])
			} else {
				var req orgs.UpdateRequest
				if req.MaxMembers, err = parseSeatLimit(args[1]); err != nil {
					return err
				}
				o, err = s.Orgs.Update(cmd.Context(), args[0], req)
			}
			if err != nil {
				return err
			}
			limit := "unlimited"
			if o.Seats.Limit != nil {
				limit = strconv.FormatInt(*o.Seats.Limit, 10)
			}
			fmt.Fprintf(c.stdout, "%s\tlimit %s\tmembers %d\tpending %d\n", o.ID, limit, o.Seats.Members, o.Seats.Pending)
			return nil
		}),
	}
}

// remindersCmd shows an organization's automatic reminder offsets, or
// sets its own (--after-sent, --before-expiry; empty turns a list off), or
// removes them (--default: the configured ones apply).
func (c *cli) remindersCmd() *cobra.Command {
	var after, before []time.Duration
	var useDefault bool
	cmd := &cobra.Command{
		Use:   "reminders ORG [--after-sent 48h,96h] [--before-expiry 24h] [--default]",
		Short: "Show an organization's automatic reminder offsets, set its own, or go back to the configured ones",
		Args:  cobra.ExactArgs(1),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			var err error
			var o orgs.Organization
			set := cmd.Flags().Changed("after-sent") || cmd.Flags().Changed("before-expiry")
			switch {
			case useDefault && set:
				return errors.New("--default removes the organization's own offsets: give it alone")
			case useDefault:
				o, err = s.Orgs.Update(cmd.Context(), args[0], orgs.UpdateRequest{Reminders: orgs.NullableReminders{Set: true}})
			case set:
				plan := orgs.Reminders{AfterSent: after, BeforeExpiry: before}
				o, err = s.Orgs.Update(cmd.Context(), args[0], orgs.UpdateRequest{Reminders: orgs.NullableReminders{Set: true, Value: &plan}})
			default:
				o, err = s.Orgs.Store().Resolve(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return c.printReminders(o)
		}),
	}
	cmd.Flags().DurationSliceVar(&after, "after-sent", nil, "reminders this long after the invitation was created (comma-separated; \"\" for none)")
	cmd.Flags().DurationSliceVar(&before, "before-expiry", nil, "reminders this long before the invitation expires (comma-separated; \"\" for none)")
	cmd.Flags().BoolVar(&useDefault, "default", false, "remove the organization's own offsets: the configured ones apply")
	return cmd
}

// printReminders shows the plan an organization's invitations follow: its
// own, or the configured one.
func (c *cli) printReminders(o orgs.Organization) error {
	source, plan := "organization", o.Reminders
	if plan == nil {
		cfg, err := c.load()
		if err != nil {
			return err
		}
		source = "configured"
		plan = &orgs.Reminders{AfterSent: cfg.Invitations.Reminders.AfterSent, BeforeExpiry: cfg.Invitations.Reminders.BeforeExpiry}
	}
	fmt.Fprintf(c.stdout, "%s\t%s\tafter_sent %s\tbefore_expiry %s\n", o.ID, source, offsetList(plan.AfterSent), offsetList(plan.BeforeExpiry))
	return nil
}

// offsetList shows reminder offsets as "48h,96h", or "none".
func offsetList(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = orgs.ShortDuration(d)
	}
	return strings.Join(out, ",")
}

// parseSeatLimit reads the seats command's LIMIT: a number, or
// "unlimited" (or "none") to remove the limit.
func parseSeatLimit(arg string) (orgs.NullableInt, error) {
	if arg == "unlimited" || arg == "none" {
		return orgs.NullableInt{Set: true}, nil
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return orgs.NullableInt{}, fmt.Errorf("LIMIT must be a number or \"unlimited\", not %q", arg)
	}
	return orgs.NullableInt{Set: true, Value: &n}, nil
}

func listOrgs(ctx context.Context, s *server.Server, w io.Writer) error {
	cursor := ""
	for {
		page, err := s.Orgs.Store().List(ctx, cursor, 100)
		if err != nil {
			return err
		}
		for _, o := range page.Items {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", o.ID, o.Slug, o.State, o.Name)
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

// inviteFlags are the invite command's options.
type inviteFlags struct {
	org, role, inviterName, locale string
	csv, idemKey                   string
	noEmail                        bool
	ttl                            time.Duration
}

func (c *cli) inviteCmd() *cobra.Command {
	var f inviteFlags
	invite := &cobra.Command{
		Use:   "invite --org ORG (EMAIL... | --csv FILE)",
		Short: "Invite addresses to an organization (mail goes out through the outbox)",
		Long: `Invites the addresses given, or every row of a CSV file (--csv; header row
email,role,first_name,last_name,locale,ttl,redirect_to, any length: sent in
chunks of 1,000 rows, each under an idempotency key, with a progress line and a
summary by result; running the same file again within 24 hours sends nothing
twice).`,
		Args: func(_ *cobra.Command, args []string) error {
			if (f.csv == "") == (len(args) == 0) {
				return errors.New("give addresses or --csv FILE (not both)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.org == "" {
				return errors.New("--org is required")
			}
			s, err := c.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			if f.csv != "" {
				return c.inviteCSV(cmd.Context(), s, f)
			}
			return c.invite(cmd.Context(), s, f, args)
		},
	}
	invite.Flags().StringVar(&f.csv, "csv", "", "CSV file of invitations (header row: email,role,first_name,...)")
	invite.Flags().StringVar(&f.idemKey, "idempotency-key", "", "with --csv: idempotency key prefix (default: from the file's digest)")
	invite.Flags().StringVar(&f.org, "org", "", "organization id or slug")
	invite.Flags().StringVar(&f.role, "role", orgs.DefaultRole, "role to grant")
	invite.Flags().StringVar(&f.inviterName, "inviter", "", "inviter display name shown in the mail")
	invite.Flags().DurationVar(&f.ttl, "ttl", 0, "how long the link is valid (default: invitations.ttl)")
	invite.Flags().BoolVar(&f.noEmail, "no-email", false, "print the accept link instead of mailing it")
	invite.Flags().StringVar(&f.locale, "locale", "", "locale of the mail, BCP 47 (default: the organization's, else templates.default_locale)")
	return invite
}

// invite invites each address, printing a line per invitation and an
// error line per failure.
func (c *cli) invite(ctx context.Context, s *server.Server, f inviteFlags, emails []string) error {
	var failed int
	for _, email := range emails {
		req := invites.InviteRequest{Email: email, Role: f.role, Locale: f.locale}
		if f.inviterName != "" {
			req.Inviter = &invites.Inviter{Name: f.inviterName}
		}
		if f.ttl > 0 {
			d := invites.Duration(f.ttl)
			req.TTL = &d
		}
		send := !f.noEmail
		req.SendEmail = &send
		inv, _, err := s.Invites.Invite(ctx, f.org, req)
		if err != nil {
			failed++
			fmt.Fprintf(c.stderr, "%s\terror: %v\n", email, err)
			continue
		}
		line := []string{inv.ID, inv.Email, inv.Role, string(inv.Status)}
		if inv.AcceptURL != "" {
			line = append(line, inv.AcceptURL)
		}
		fmt.Fprintln(c.stdout, strings.Join(line, "\t"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d invitations failed", failed, len(emails))
	}
	return nil
}

func (c *cli) kratosConfigCmd() *cobra.Command {
	var o kratosconf.Options
	cmd := &cobra.Command{
		Use:   "kratos-config",
		Short: "Print a Kratos configuration (kratos.yml) wired to this kratos-orgs",
		Long: `Prints a Kratos v1.3 configuration whose UI pages, return URLs and webhooks
point at kratos-orgs, with the webhook bodies inline. Addresses default to the
configuration's (serve.public.base_url, the admin port, kratos.public_url and
kratos.admin_url); the webhook secret is hooks.secret (KRATOS_ORGS_HOOKS_SECRET).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.load()
			if err != nil {
				return err
			}
			opts := kratosOptions(cfg, o)
			out, err := kratosconf.Generate(opts)
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.SidecarURL, "public-url", "", "kratos-orgs' public URL as browsers reach it (default serve.public.base_url)")
	fl.StringVar(&o.SidecarAdminURL, "admin-url", "", "kratos-orgs' admin listener as Kratos reaches it (default http://127.0.0.1:<serve.admin.port>)")
	fl.StringVar(&o.KratosPublicURL, "kratos-public-url", "", "Kratos' public URL (default kratos.public_url)")
	fl.StringVar(&o.KratosAdminURL, "kratos-admin-url", "", "Kratos' admin URL (default kratos.admin_url)")
	fl.StringVar(&o.Host, "kratos-host", "", "address Kratos' listeners bind (default 127.0.0.1)")
	fl.IntVar(&o.PublicPort, "kratos-public-port", 0, "port of Kratos' public listener (default the public URL's)")
	fl.IntVar(&o.AdminPort, "kratos-admin-port", 0, "port of Kratos' admin listener (default the admin URL's)")
	fl.StringVar(&o.SchemaURL, "identity-schema", "", "identity schema URL (file://, https://, base64://; default the example schema, inline)")
	fl.StringVar(&o.SMTPURI, "smtp-uri", "", "Kratos' courier SMTP URI (default a local development relay)")
	fl.BoolVar(&o.Dev, "dev", false, "add fixed development secrets and a fast password hash (never in production)")
	return cmd
}

// kratosOptions fills the flags left empty from the configuration.
func kratosOptions(cfg config.Config, o kratosconf.Options) kratosconf.Options {
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	o.SidecarURL = or(o.SidecarURL, cfg.Serve.Public.BaseURL)
	o.SidecarAdminURL = or(o.SidecarAdminURL, fmt.Sprintf("http://127.0.0.1:%d", cfg.Serve.Admin.Port))
	o.KratosPublicURL = or(o.KratosPublicURL, cfg.Kratos.PublicURL)
	o.KratosAdminURL = or(o.KratosAdminURL, cfg.Kratos.AdminURL)
	o.SchemaID = cfg.Kratos.SchemaID
	o.HooksSecret = cfg.Hooks.Secret
	return o
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
