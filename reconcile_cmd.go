package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kratos-orgs/kratos-orgs/reconcile"
	"github.com/kratos-orgs/kratos-orgs/server"
)

// reconcileCmd is `kratos-orgs reconcile`: one full pass of the
// reconciler, a dry run unless --apply is given.
func (c *cli) reconcileCmd() *cobra.Command {
	var apply bool
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Find (and with --apply repair) what crashes left behind: orphaned placeholder identities, out-of-step indexes",
		Long: "Runs one full pass of the reconciler that serve runs periodically. Without --apply it changes nothing\n" +
			"and prints what it would fix, one line per record (kind, then an id or slug; never an address).",
		Args: cobra.NoArgs,
		RunE: c.withServer(func(cmd *cobra.Command, _ []string, s *server.Server) error {
			var err error
			if s.Reconciler == nil {
				return errors.New("the reconciler needs the Kratos admin API")
			}
			var rep reconcile.Report
			if !apply {
				rep, err = s.Reconciler.Pass(cmd.Context(), false)
			} else {
				lease, lerr := reconcile.Acquire(cmd.Context(), s.Redis(), s.Keyspace().ReconcileLease(), reconcile.DefaultLeaseTTL)
				if lerr != nil {
					return fmt.Errorf("%w; try again later", lerr)
				}
				err = lease.Hold(cmd.Context(), func(ctx context.Context) error {
					rep, err = s.Reconciler.Pass(ctx, true)
					return err
				})
			}
			printReport(c.stdout, rep, apply)
			return err
		}),
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "repair what is found (default: dry run, change nothing)")
	return cmd
}

func printReport(w io.Writer, rep reconcile.Report, apply bool) {
	for _, f := range rep.Fixes {
		fmt.Fprintf(w, "%s\t%s\n", f.Kind, f.Ref)
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(rep.Counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", kind, rep.Counts[kind]))
	}
	summary := strings.Join(parts, " ")
	switch {
	case rep.Total() == 0:
		fmt.Fprintln(w, "# nothing to fix")
	case apply:
		fmt.Fprintf(w, "# fixed %d: %s\n", rep.Total(), summary)
	default:
		fmt.Fprintf(w, "# dry run, nothing changed; --apply would fix %d: %s\n", rep.Total(), summary)
	}
}
