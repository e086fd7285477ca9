package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/cli/filter"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/client"
)

func searchCmd(cfg *Config) *cobra.Command {
	var (
		blueprint string
		sorts     []string
		limit     int
	)
	cmd := &cobra.Command{
		Use:   "search [--blueprint BP] [FILTER …]",
		Short: "Search the catalog with short filters (ANDed)",
		Long: `Searches entities with filters mapped to the search rule language, all of
which must hold:

  PROPERTY OP VALUE      =, !=, <, <=, >, >=, ~ (contains), contains, beginsWith, endsWith
  PROPERTY OP V1,V2,…    in, notIn (or "not in"), containsAny
  PROPERTY between A,B
  PROPERTY isEmpty       also isNotEmpty, exists, missing, isExpired, isNotExpired
  relatedTo BP/ID [upstream|downstream] [via RELATION] [depth 1-3]

PROPERTY is a property, a meta-property ($identifier, $title, $team, $createdAt,
$updatedAt, $datasource), a relation or a path (owner.slackChannel,
scorecards.readiness.level). Numbers, true, false and null are typed; quote a
string holding spaces or commas, or one that reads as a number ('42').`,
		Example: `  portico search --blueprint service 'tier <= 2' 'language = go'
  portico search --blueprint service 'language in go,rust' 'relatedTo team/payments' --sort -tier
  portico search '$team contains payments' --limit 10 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			filters := args
			if blueprint != "" {
				filters = append([]string{"$blueprint = " + quote(blueprint)}, args...)
			}
			q, err := filter.ParseAll(filters)
			if err != nil {
				return &ExitError{ExitFailure, err}
			}
			query := catalog.SearchQuery{Query: q}
			for _, s := range sorts {
				order := "asc"
				if rest, ok := strings.CutPrefix(s, "-"); ok {
					s, order = rest, "desc"
				}
				query.Sort = append(query.Sort, catalog.SortField{Property: s, Order: order})
			}
			c := cfg.Client()
			page, err := search(cmd, c, query, limit)
			if err != nil {
				return explain(c, "search", err)
			}
			return p.print(page, func(t *table) { entityRows(t, blueprint == "", page.Entities...) })
		},
	}
	f := cmd.Flags()
	f.StringVarP(&blueprint, "blueprint", "b", "", "only entities of this blueprint")
	f.StringSliceVar(&sorts, "sort", nil, "sort by a property, descending with a leading - (repeatable: --sort -tier --sort $identifier)")
	f.IntVar(&limit, "limit", 0, "return at most this many entities (0: all)")
	_ = cmd.RegisterFlagCompletionFunc("blueprint", cfg.flag(blueprintNames))
	cfg.bind(cmd)
	return cmd
}

// quote makes s a quoted filter value.
func quote(s string) string { return "'" + s + "'" }

// search runs q page after page up to limit (0: all).
func search(cmd *cobra.Command, c *client.Client, q catalog.SearchQuery, limit int) (*client.EntityPage, error) {
	return allPages(limit, func(size int, cursor string) (*client.EntityPage, error) {
		q.Limit, q.Cursor = size, nil
		if cursor != "" {
			q.Cursor = &cursor
		}
		return c.Search(cmd.Context(), q)
	})
}
