package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kratos-orgs/kratos-orgs/server"
	"github.com/kratos-orgs/kratos-orgs/templates"
)

// templatesCmd is `kratos-orgs templates`: preview a template with sample
// data, or check that every locale is complete.
func (c *cli) templatesCmd() *cobra.Command {
	tpl := &cobra.Command{Use: "templates", Short: "Work with mail and page templates"}
	tpl.AddCommand(&cobra.Command{
		Use:   "render NAME",
		Short: "Render a template with sample data (preview an override before deploying); NAME may carry a locale (invitation_subject.de.txt)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := c.renderer()
			if err != nil {
				return err
			}
			return r.Render(c.stdout, args[0])
		},
	}, &cobra.Command{
		Use:   "check",
		Short: "List, per locale, the mail templates and message keys it lacks (shown in English instead); exits non-zero if any",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := c.renderer()
			if err != nil {
				return err
			}
			return checkLocales(c, r)
		},
	})
	return tpl
}

// renderer loads the templates of the configuration, or the embedded ones
// when no configuration is given or found.
func (c *cli) renderer() (*templates.Renderer, error) {
	cfg, err := c.load()
	if err != nil {
		if c.cfgPath != "" {
			return nil, err
		}
		return templates.New("")
	}
	return templates.Load(server.TemplateOptions(cfg.Templates))
}

// checkLocales prints each locale's gaps, one per line under the locale,
// and fails when there is any.
func checkLocales(c *cli, r *templates.Renderer) error {
	missing := r.Missing()
	total := 0
	for _, loc := range r.Locales() {
		gaps := missing[loc]
		total += len(gaps)
		switch {
		case loc == templates.BaseLocale.String():
			fmt.Fprintf(c.stdout, "%s: the fallback of every other locale\n", loc)
		case len(gaps) == 0:
			fmt.Fprintf(c.stdout, "%s: complete\n", loc)
		default:
			fmt.Fprintf(c.stdout, "%s: %d missing\n  %s\n", loc, len(gaps), strings.Join(gaps, "\n  "))
		}
	}
	if total > 0 {
		return fmt.Errorf("templates: %d translations missing in %s", total, strings.Join(slices.Sorted(maps.Keys(missing)), ", "))
	}
	return nil
}
