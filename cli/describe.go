package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/client"
)

func describeCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Show one thing in full",
	}
	cmd.AddCommand(describeEntityCmd(cfg))
	cfg.bind(cmd)
	return cmd
}

// entityDescription is what describe entity shows: the entity (its
// scorecard results ride on it) and its most recent runs.
type entityDescription struct {
	Entity *catalog.Entity `json:"entity"`
	Runs   []*actions.Run  `json:"runs"`
}

func describeEntityCmd(cfg *Config) *cobra.Command {
	var runs int
	cmd := &cobra.Command{
		Use:     "entity BLUEPRINT/IDENTIFIER",
		Aliases: []string{"entities", "ent"},
		Short:   "An entity's properties, relations, scorecards and recent runs",
		Example: `  portico describe entity service/checkout
  portico describe entity service/checkout -o json    # {"entity": …, "runs": […]}`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cfg.arg(entityNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			bp, id, ok := splitRef(args[0])
			if !ok {
				return &ExitError{ExitFailure, fmt.Errorf("%q: name the entity as BLUEPRINT/IDENTIFIER", args[0])}
			}
			c := cfg.Client()
			ctx := cmd.Context()
			e, err := c.Entity(ctx, bp, id)
			if err != nil {
				return explain(c, "describe "+args[0], err)
			}
			b, err := c.Blueprint(ctx, bp)
			if err != nil {
				return explain(c, "describe "+args[0]+": its blueprint", err)
			}
			page, err := listRuns(cmd, c, client.RunFilter{Entity: bp + "/" + id, Limit: runs})
			if err != nil {
				return explain(c, "describe "+args[0]+": its runs", err)
			}
			d := entityDescription{Entity: e, Runs: page.Runs}
			if p.structured() {
				return p.print(d, nil)
			}
			return describeEntity(p.w, b, d)
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 10, "how many recent runs to show")
	return cmd
}

// describeEntity writes d as sections of aligned lines.
func describeEntity(w io.Writer, b *catalog.Blueprint, d entityDescription) error {
	e := d.Entity
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cols ...any) {
		s := make([]string, len(cols))
		for i, c := range cols {
			s[i] = cell(c)
		}
		fmt.Fprintln(tw, strings.Join(s, "\t"))
	}
	line("Entity:", e.Blueprint+"/"+e.Identifier)
	line("Title:", e.Title)
	line("Team:", e.Team)
	line("Datasource:", e.Datasource)
	line("Created:", cell(e.CreatedAt)+" by "+cell(e.CreatedBy))
	line("Updated:", cell(e.UpdatedAt)+" by "+cell(e.UpdatedBy))
	fmt.Fprintln(tw, "\nProperties:")
	if len(e.Properties) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	for _, k := range keys(e.Properties) {
		line("  "+k, e.Properties[k])
	}
	fmt.Fprintln(tw, "\nRelations:")
	if len(e.Relations) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	for _, k := range keys(e.Relations) {
		target := b.Relations[k].Target
		var refs []string
		for _, id := range catalog.RelationIDs(e.Relations[k]) {
			refs = append(refs, target+"/"+id)
		}
		line("  "+k, refs)
	}
	fmt.Fprintln(tw, "\nScorecards:")
	if len(e.Scorecards) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	for _, sc := range keys(e.Scorecards) {
		var res struct {
			Level string                     `json:"level"`
			Rules []catalog.EntityRuleResult `json:"rules"`
		}
		raw, _ := json.Marshal(e.Scorecards[sc])
		_ = json.Unmarshal(raw, &res)
		var failing []string
		for _, r := range res.Rules {
			if !r.Passed {
				failing = append(failing, r.Identifier+" ("+r.Level+")")
			}
		}
		verdict := "all rules pass"
		if len(failing) > 0 {
			verdict = "failing: " + strings.Join(failing, ", ")
		}
		line("  "+sc, res.Level, verdict)
	}
	fmt.Fprintln(tw, "\nRecent runs:")
	if len(d.Runs) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	for _, r := range d.Runs {
		line("  "+r.ID, r.Action, r.Status, r.TriggeredBy, r.CreatedAt)
	}
	return tw.Flush()
}
