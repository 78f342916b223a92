package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kratos-orgs/kratos-orgs/events"
	"github.com/kratos-orgs/kratos-orgs/server"
)

// auditCmd is `kratos-orgs audit ORG`: an organization's audit trail,
// newest first, one change a line.
func (c *cli) auditCmd() *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "audit ORG",
		Short: "Print an organization's audit trail, newest first: time, change, actor, client address, data (an id also reads a deleted organization's)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			id, err := s.Orgs.Store().ResolveID(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			page, err := s.Orgs.Store().Audit(cmd.Context(), id, cursor, min(max(limit, 1), 1000))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			for _, e := range page.Items {
				data, _ := json.Marshal(e.Data)
				fmt.Fprintf(w, "%s\t%s\t%s:%s\t%s\t%s\n", e.Time, e.Type, e.Actor.Type, e.Actor.ID, e.Actor.Addr, data)
			}
			if page.NextCursor != "" {
				fmt.Fprintf(w, "# more: --cursor %s\n", page.NextCursor)
			}
			return w.Flush()
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "entries to print (1 to 1000)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after this entry id")
	return cmd
}

// eventsCmd is `kratos-orgs events`: recent webhook deliveries, and
// redelivering one.
func (c *cli) eventsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Signed lifecycle webhooks: recent deliveries, redelivery"}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the newest delivery attempts, all endpoints and shards: time, endpoint, webhook-id, type, outcome, HTTP status, attempt, error",
		Args:  cobra.NoArgs,
		RunE: c.withServer(func(cmd *cobra.Command, _ []string, s *server.Server) error {
			ds, err := events.Recent(cmd.Context(), s.Redis(), s.Keyspace(), limit)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			for _, d := range ds {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.At.Format("2006-01-02T15:04:05.000Z"), d.Endpoint,
					d.WebhookID, d.Type, d.Outcome, d.Status, d.Attempt, d.Error)
			}
			return w.Flush()
		}),
	}
	list.Flags().IntVar(&limit, "limit", 50, "attempts to print")
	cmd.AddCommand(list, c.redeliverCmd())
	return cmd
}

func (c *cli) redeliverCmd() *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "redeliver WEBHOOK-ID",
		Short: "Send one event again now, with its webhook-id, to one endpoint (--endpoint; default: the only one)",
		Args:  cobra.ExactArgs(1),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			if s.Events == nil {
				return errors.New("no events.endpoints configured")
			}
			eps := s.Config().Events.Endpoints
			if endpoint == "" && len(eps) == 1 {
				endpoint = eps[0].ID()
			}
			d, err := s.Events.Redeliver(cmd.Context(), args[0], endpoint)
			fmt.Fprintf(c.stdout, "%s\t%s\t%s\t%d\t%s\n", d.Endpoint, d.WebhookID, d.Outcome, d.Status, d.Error)
			return err
		}),
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "the endpoint's name (events.endpoints[].name, or ep-… derived from its URL)")
	return cmd
}
