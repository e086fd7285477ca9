package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/internal/client"
)

func getCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "List or show blueprints, entities, actions, runs, integrations and plugins",
		Example: `  portico get blueprints
  portico get entities service            # every service (pages followed; --limit to stop early)
  portico get entity service/checkout     # one entity: the first "/" splits blueprint from identifier
  portico get runs --action deploy --status FAILURE
  portico get actions deploy -o yaml`,
	}
	cmd.AddCommand(getBlueprintsCmd(cfg), getEntitiesCmd(cfg), getActionsCmd(cfg), getRunsCmd(cfg),
		getIntegrationsCmd(cfg), getPluginsCmd(cfg))
	cfg.bind(cmd)
	return cmd
}

// getter is a `get <kind> [NAME]` command: one item by name, or all.
type getter[T any] struct {
	use, short     string
	aliases        []string
	singular, list string // the kind's names in messages; list is also the JSON key of all
	names          names
	one            func(ctx context.Context, c *client.Client, name string) (item any, row T, err error)
	all            func(ctx context.Context, c *client.Client) ([]T, error)
	rows           func(t *table, items ...T)
}

func (g getter[T]) command(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:               g.use,
		Aliases:           g.aliases,
		Short:             g.short,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: cfg.arg(g.names),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			c := cfg.Client()
			if len(args) == 1 {
				item, row, err := g.one(cmd.Context(), c, args[0])
				if err != nil {
					return explain(c, "get "+g.singular+" "+args[0], err)
				}
				return p.print(item, func(t *table) { g.rows(t, row) })
			}
			all, err := g.all(cmd.Context(), c)
			if err != nil {
				return explain(c, "get "+g.list, err)
			}
			return p.print(map[string]any{g.list: all}, func(t *table) { g.rows(t, all...) })
		},
	}
}

func getBlueprintsCmd(cfg *Config) *cobra.Command {
	return getter[*catalog.Blueprint]{
		use: "blueprints [BLUEPRINT]", aliases: []string{"blueprint", "bp", "bps"}, short: "List the blueprints, or show one",
		singular: "blueprint", list: "blueprints", names: blueprintNames, rows: blueprintRows,
		one: func(ctx context.Context, c *client.Client, id string) (any, *catalog.Blueprint, error) {
			bp, err := c.Blueprint(ctx, id)
			return bp, bp, err
		},
		all: func(ctx context.Context, c *client.Client) ([]*catalog.Blueprint, error) { return c.Blueprints(ctx) },
	}.command(cfg)
}

func getActionsCmd(cfg *Config) *cobra.Command {
	return getter[*actions.Action]{
		use: "actions [ACTION]", aliases: []string{"action"}, short: "List the actions, or show one",
		singular: "action", list: "actions", names: actionNames, rows: actionRows,
		one: func(ctx context.Context, c *client.Client, id string) (any, *actions.Action, error) {
			a, err := c.Action(ctx, id)
			return a, a, err
		},
		all: func(ctx context.Context, c *client.Client) ([]*actions.Action, error) { return c.Actions(ctx) },
	}.command(cfg)
}

func getIntegrationsCmd(cfg *Config) *cobra.Command {
	return getter[*integrations.Status]{
		use: "integrations [ID]", aliases: []string{"integration"}, short: "List the installed integrations, or show one",
		singular: "integration", list: "integrations", names: integrationNames, rows: integrationRows,
		one: func(ctx context.Context, c *client.Client, id string) (any, *integrations.Status, error) {
			in, err := c.Integration(ctx, id)
			if err != nil {
				return nil, nil, err
			}
			return in, &in.Status, nil
		},
		all: func(ctx context.Context, c *client.Client) ([]*integrations.Status, error) {
			return c.Integrations(ctx)
		},
	}.command(cfg)
}

// splitRef splits "bp/id" at its first "/".
func splitRef(s string) (bp, id string, ok bool) {
	bp, id, ok = strings.Cut(s, "/")
	return bp, id, ok && bp != "" && id != ""
}

func blueprintRows(t *table, bps ...*catalog.Blueprint) {
	t.row("IDENTIFIER", "TITLE", "PROPERTIES", "RELATIONS", "UPDATED")
	for _, b := range bps {
		rels := make([]string, 0, len(b.Relations))
		for _, name := range keys(b.Relations) {
			rels = append(rels, name+"→"+b.Relations[name].Target)
		}
		t.row(b.Identifier, b.Title, keys(b.Schema.Properties), rels, b.UpdatedAt)
	}
}

func getEntitiesCmd(cfg *Config) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:     "entities BLUEPRINT | BLUEPRINT/IDENTIFIER",
		Aliases: []string{"entity", "ent"},
		Short:   "List a blueprint's entities, or show one",
		Long: `With a blueprint, lists its entities, following the pages to the end (or to
--limit). With BLUEPRINT/IDENTIFIER, shows that entity: the first "/" splits the
blueprint from the identifier, which may itself hold "/".`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cfg.arg(entityNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			c := cfg.Client()
			if bp, id, ok := splitRef(args[0]); ok {
				e, err := c.Entity(cmd.Context(), bp, id)
				if err != nil {
					return explain(c, "get entity "+args[0], err)
				}
				return p.print(e, func(t *table) { entityRows(t, false, e) })
			}
			page, err := listEntities(cmd, c, strings.TrimSuffix(args[0], "/"), limit)
			if err != nil {
				return explain(c, "get entities of "+args[0], err)
			}
			return p.print(page, func(t *table) { entityRows(t, false, page.Entities...) })
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many entities (0: all)")
	return cmd
}

// listEntities reads blueprint bp's entities page after page, up to
// limit (0: all); the answer has the API's shape, next set when limit
// cut the list short.
func listEntities(cmd *cobra.Command, c *client.Client, bp string, limit int) (*client.EntityPage, error) {
	return allPages(limit, func(size int, cursor string) (*client.EntityPage, error) {
		return c.Entities(cmd.Context(), bp, size, cursor)
	})
}

// allPages calls fetch for page after page (size: how many at most,
// cursor: where the page starts) until the last one or until limit
// entities (0: all); the answer has the API's shape, next set when limit
// cut the list short.
func allPages(limit int, fetch func(size int, cursor string) (*client.EntityPage, error)) (*client.EntityPage, error) {
	all := &client.EntityPage{Entities: []*catalog.Entity{}}
	cursor := ""
	for {
		size := catalog.MaxSearchLimit
		if left := limit - len(all.Entities); limit > 0 && left < size {
			size = left
		}
		page, err := fetch(size, cursor)
		if err != nil {
			return nil, err
		}
		all.Entities = append(all.Entities, page.Entities...)
		all.Total, all.Next = page.Total, page.Next
		if page.Next == nil || *page.Next == "" || (limit > 0 && len(all.Entities) >= limit) {
			return all, nil
		}
		cursor = *page.Next
	}
}

// entityRows draws entities; withBlueprint adds their blueprint (search
// results may mix blueprints).
func entityRows(t *table, withBlueprint bool, es ...*catalog.Entity) {
	head := []any{"IDENTIFIER", "TITLE", "TEAM", "PROPERTIES", "UPDATED"}
	if withBlueprint {
		head = append([]any{"BLUEPRINT"}, head...)
	}
	t.row(head...)
	for _, e := range es {
		row := []any{e.Identifier, e.Title, e.Team, pairs(e.Properties), e.UpdatedAt}
		if withBlueprint {
			row = append([]any{e.Blueprint}, row...)
		}
		t.row(row...)
	}
}

func actionRows(t *table, as ...*actions.Action) {
	t.row("IDENTIFIER", "TITLE", "BLUEPRINT", "OPERATION", "INVOCATION", "APPROVAL", "INPUTS")
	for _, a := range as {
		approval := "-"
		if a.Approval != nil {
			approval = fmt.Sprintf("%d", max(a.Approval.Count, 1))
		}
		var inputs []string
		if a.UserInputs != nil {
			inputs = keys(a.UserInputs.Properties)
		}
		t.row(a.Identifier, a.Title, a.Blueprint, a.Operation, a.Invocation.Type, approval, inputs)
	}
}

func getRunsCmd(cfg *Config) *cobra.Command {
	var f client.RunFilter
	cmd := &cobra.Command{
		Use:     "runs [RUN]",
		Aliases: []string{"run"},
		Short:   "List runs (newest first), or show one",
		Long: `Lists the runs you may see, newest first: --limit of them (default 20),
narrowed by --action, --status, --entity (BLUEPRINT/IDENTIFIER) and --triggered-by.
With a run id, shows that run.`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: cfg.arg(runNames("")),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			c := cfg.Client()
			if len(args) == 1 {
				r, err := c.Run(cmd.Context(), args[0])
				if err != nil {
					return explain(c, "get run "+args[0], err)
				}
				return p.print(r, func(t *table) { runRows(t, r) })
			}
			page, err := listRuns(cmd, c, f)
			if err != nil {
				return explain(c, "get runs", err)
			}
			return p.print(page, func(t *table) { runRows(t, page.Runs...) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Action, "action", "", "only runs of this action")
	fl.StringVar(&f.Status, "status", "", "only runs in this status (IN_PROGRESS, WAITING_FOR_APPROVAL, SUCCESS, FAILURE, …)")
	fl.StringVar(&f.Entity, "entity", "", "only runs on this entity (BLUEPRINT/IDENTIFIER)")
	fl.StringVar(&f.TriggeredBy, "triggered-by", "", "only runs this user requested ($me: yours)")
	fl.IntVar(&f.Limit, "limit", 20, "list at most this many runs")
	_ = cmd.RegisterFlagCompletionFunc("action", cfg.flag(actionNames))
	_ = cmd.RegisterFlagCompletionFunc("entity", cfg.flag(entityNames))
	return cmd
}

// maxRunPages bounds how many pages a run list reads: the server reads a
// bounded part of its index per request, so pages may be short.
const maxRunPages = 20

// listRuns reads pages of runs until f.Limit of them (or the end).
func listRuns(cmd *cobra.Command, c *client.Client, f client.RunFilter) (*client.RunPage, error) {
	want := f.Limit
	all := &client.RunPage{Runs: []*actions.Run{}}
	for range maxRunPages {
		f.Limit = want - len(all.Runs)
		page, err := c.Runs(cmd.Context(), f)
		if err != nil {
			return nil, err
		}
		all.Runs = append(all.Runs, page.Runs...)
		all.Next = page.Next
		if page.Next == nil || len(all.Runs) >= want {
			break
		}
		f.Cursor = *page.Next
	}
	return all, nil
}

func runRows(t *table, rs ...*actions.Run) {
	t.row("ID", "ACTION", "ENTITY", "STATUS", "TRIGGERED BY", "CREATED", "ENDED")
	for _, r := range rs {
		entity := ""
		if r.Entity != "" {
			entity = r.Blueprint + "/" + r.Entity
		}
		t.row(r.ID, r.Action, entity, r.Status, r.TriggeredBy, r.CreatedAt, r.EndedAt)
	}
}

func integrationRows(t *table, all ...*integrations.Status) {
	t.row("ID", "PLUGIN", "ENTITIES", "SCHEDULE", "LAST SYNC", "STATUS", "ERROR")
	for _, s := range all {
		var at, status any
		if s.LastSync != nil {
			at, status = s.LastSync.StartedAt, s.LastSync.Status
		}
		t.row(s.ID, s.Plugin, s.Entities, s.Schedule, at, status, s.LastError)
	}
}

func getPluginsCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:     "plugins [NAME[@VERSION]]",
		Aliases: []string{"plugin"},
		Short:   "List the published plugins (every version), or those of one name",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			return listPlugins(cmd, cfg, name)
		},
	}
}

// listPlugins prints the published plugins, only those of name (or
// name@version) when given.
func listPlugins(cmd *cobra.Command, cfg *Config, name string) error {
	p, err := cfg.printer(cmd)
	if err != nil {
		return err
	}
	c := cfg.Client()
	all, err := c.Plugins(cmd.Context())
	if err != nil {
		return explain(c, "list plugins", err)
	}
	if name != "" {
		var kept []*registry.Plugin
		for _, pl := range all {
			if pl.Name == name || pl.Ref() == name {
				kept = append(kept, pl)
			}
		}
		if len(kept) == 0 {
			return fmt.Errorf("no plugin %s is published", name)
		}
		all = kept
	}
	return p.print(map[string]any{"plugins": all}, func(t *table) {
		t.row("NAME", "VERSION", "TYPE", "SIZE", "SHA256", "PUBLISHED")
		for _, pl := range all {
			t.row(pl.Name, pl.Version, pl.Type, pl.Size, short(pl.SHA256), pl.PublishedAt)
		}
	})
}

// short is the first 12 characters of a digest.
func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
