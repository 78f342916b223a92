package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kratos-orgs/kratos-orgs/domains"
	"github.com/kratos-orgs/kratos-orgs/server"
)

// domainsCmd is `kratos-orgs domains ORG [add DOMAIN [POLICY [ROLE]] |
// verify DOMAIN [--operator] | rm DOMAIN]`: an organization's verified
// domains (README "Verified domains").
func (c *cli) domainsCmd() *cobra.Command {
	var operator bool
	cmd := &cobra.Command{
		Use:   "domains ORG [add DOMAIN [auto_join|suggest [ROLE]] | verify DOMAIN [--operator] | rm DOMAIN]",
		Short: "List, claim, verify (DNS TXT check, or --operator) or release an organization's e-mail domains",
		Args:  cobra.RangeArgs(1, 5),
		RunE: c.withServer(func(cmd *cobra.Command, args []string, s *server.Server) error {
			return runDomains(cmd.Context(), s, c.stdout, args, operator)
		}),
	}
	cmd.Flags().BoolVar(&operator, "operator", false, "verify: mark the domain verified without the DNS check")
	return cmd
}

func runDomains(ctx context.Context, s *server.Server, w io.Writer, args []string, operator bool) error {
	org := args[0]
	if len(args) == 1 {
		list, err := s.Domains.List(ctx, org)
		for _, d := range list {
			printDomain(w, d)
		}
		return err
	}
	if len(args) < 3 {
		return fmt.Errorf("%s needs a DOMAIN", args[1])
	}
	domain := args[2]
	switch {
	case args[1] == "add":
		req := domains.ClaimRequest{Domain: domain}
		if len(args) > 3 {
			req.Policy = args[3]
		}
		if len(args) > 4 {
			req.Role = args[4]
		}
		d, _, err := s.Domains.Claim(ctx, org, req)
		if err != nil {
			return err
		}
		printDomain(w, d)
		if d.DNSRecord.Value != "" {
			fmt.Fprintf(w, "to verify by DNS, publish:\n%s. TXT %q\nthen run: kratos-orgs domains %s verify %s\n", d.DNSRecord.Name, d.DNSRecord.Value, org, d.Domain)
		}
		return nil
	case args[1] == "verify" && len(args) == 3:
		var d domains.Domain
		var err error
		if operator {
			yes := true
			d, err = s.Domains.Update(ctx, org, domain, domains.UpdateRequest{Verified: &yes})
		} else {
			d, err = s.Domains.Verify(ctx, org, domain)
		}
		if err != nil {
			return err
		}
		printDomain(w, d)
		return nil
	case args[1] == "rm" && len(args) == 3:
		if err := s.Domains.Release(ctx, org, domain); err != nil {
			return err
		}
		fmt.Fprintf(w, "released %s\n", domain)
		return nil
	}
	return fmt.Errorf("unknown domains command %q: use add, verify or rm", args[1])
}

func printDomain(w io.Writer, d domains.Domain) {
	verified := "unverified"
	if d.Verified {
		verified = "verified (" + d.VerifiedBy + ")"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d.Domain, d.Policy, d.Role, verified)
}
