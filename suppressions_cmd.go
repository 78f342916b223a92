package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kratos-orgs/kratos-orgs/server"
)

// suppressionsCmd is `kratos-orgs suppressions list|clear EMAIL`: the
// addresses that bounced or complained and get no mail until cleared (the
// admin API's /admin/suppressions, from the command line).
func (c *cli) suppressionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "suppressions", Short: "The suppression list: addresses that bounced or complained and get no mail"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the suppressed addresses (address, reason, since)",
		Args:  cobra.NoArgs,
		RunE: c.withServer(func(cmd *cobra.Command, _ []string, s *server.Server) error {
			cursor, n := "", 0
			for {
				page, err := s.Deliveries.ListSuppressions(cmd.Context(), cursor, 100)
				if err != nil {
					return err
				}
				for _, x := range page.Items {
					fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", x.Email, x.Reason, x.At.UTC().Format(time.RFC3339))
					n++
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			fmt.Fprintf(c.stdout, "# %d suppressed\n", n)
			return nil
		}),
	}
	clear := &cobra.Command{
		Use:   "clear EMAIL",
		Short: "Mail an address again",
		Args:  cobra.ExactArgs(1),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			cleared, err := s.Deliveries.ClearSuppression(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !cleared {
				return errors.New("the address is not suppressed")
			}
			fmt.Fprintln(c.stdout, "cleared")
			return nil
		}),
	}
	cmd.AddCommand(list, clear)
	return cmd
}
