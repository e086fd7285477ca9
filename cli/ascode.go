package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/cli/manifest"
	"github.com/portico-dev/portico/core/definitions"
)

// sourceFlags are what apply and diff read: the files and the set.
type sourceFlags struct {
	files []string
	set   string
}

func (s *sourceFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVarP(&s.files, "filename", "f", nil, "a file or directory of definitions (repeatable; directories are read recursively)")
	f.StringVar(&s.set, "set", "", "the name of this set of definitions (default: the names of the files and directories, without extension, joined with +)")
}

// setName is --set, or derived from the paths: "defs" for -f defs/,
// "services" for -f services.yaml, "a+b" for -f a -f b.yaml.
func (s *sourceFlags) setName() string {
	if s.set != "" {
		return s.set
	}
	var names []string
	for _, p := range s.files {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		base := filepath.Base(abs)
		names = append(names, strings.TrimSuffix(base, filepath.Ext(base)))
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), "+")
}

// plan reads, validates and plans the files against the portal.
func (s *sourceFlags) plan(ctx context.Context, cfg *Config, prune bool) (*manifest.Plan, error) {
	if len(s.files) == 0 {
		return nil, &ExitError{ExitFailure, errors.New("name the definitions with -f FILE|DIR")}
	}
	docs, err := manifest.Load(s.files)
	var shape manifest.Errors
	if err != nil && !errors.As(err, &shape) {
		return nil, &ExitError{ExitFailure, err}
	}
	api := cfg.Client()
	if err := manifest.Validate(ctx, docs, manifest.NewLookup(api)); err != nil {
		var more manifest.Errors
		if !errors.As(err, &more) {
			return nil, &ExitError{ExitFailure, err}
		}
		shape = append(shape, more...)
	}
	if len(shape) > 0 {
		return nil, &ExitError{ExitFailure, shape.Sorted()}
	}
	plan, err := manifest.Build(ctx, api, docs, s.setName(), prune)
	if err != nil {
		return nil, &ExitError{ExitFailure, err}
	}
	return plan, nil
}

func applyCmd(cfg *Config) *cobra.Command {
	var src sourceFlags
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR",
		Short: "Apply definitions (blueprints, actions, …, entities) from files to the portal",
		Long: `Reads multi-document YAML or JSON definitions ({"kind", "spec"}), validates all of
them (nothing is written if anything is invalid), then writes what differs from the
portal, in dependency order. A second apply of the same files changes nothing.
--prune deletes what an earlier apply of the same set created and the files no
longer have. Exits non-zero when anything failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := src.plan(cmd.Context(), cfg, prune)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dryRun {
				printPlan(out, plan, false)
				fmt.Fprintf(out, "dry run: %s (nothing applied)\n", summary(plan.Count(manifest.Create), plan.Count(manifest.Update), plan.Count(manifest.Delete), plan.Count(manifest.Unchanged)))
				return nil
			}
			a := &manifest.Applier{API: cfg.Client(), Out: out, Log: cmd.ErrOrStderr()}
			res, err := a.Apply(cmd.Context(), plan)
			for _, k := range plan.Kept {
				fmt.Fprintf(out, "kept    %s\n", k)
			}
			fmt.Fprintf(out, "apply (set %s): %s", plan.Set, summary(res.Created, res.Updated, res.Deleted, res.Unchanged))
			if res.Failed > 0 {
				fmt.Fprintf(out, ", %d failed", res.Failed)
			}
			fmt.Fprintln(out)
			if err != nil {
				return &ExitError{ExitFailure, err}
			}
			return nil
		},
	}
	src.bind(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change, change nothing")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete what an earlier apply of this set created and the files no longer have")
	cfg.bind(cmd)
	return cmd
}

func summary(created, changed, deleted, unchanged int) string {
	return fmt.Sprintf("%d created, %d changed, %d deleted, %d unchanged", created, changed, deleted, unchanged)
}

func diffCmd(cfg *Config) *cobra.Command {
	var src sourceFlags
	var prune bool
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR",
		Short: "Show what apply would change, field by field, and what drifted",
		Long: `Prints, for every definition of the files that differs from the portal, its
changes field by field (JSON path: portal value → files' value), the definitions
apply would create (and with --prune delete), and the definitions of the set that
were changed outside of code since they were last applied (drift).
Exits 0 when there is no difference, 1 when there is, 2 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := src.plan(cmd.Context(), cfg, prune)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			printPlan(out, plan, true)
			drift, err := fetchDrift(cmd.Context(), cfg, plan.Set)
			if err != nil {
				return &ExitError{ExitFailure, err}
			}
			printDrift(out, drift)
			if plan.Changes() || len(drift) > 0 {
				return &ExitError{ExitBelow, fmt.Errorf("%d to create, %d to change, %d to delete, %d drifted",
					plan.Count(manifest.Create), plan.Count(manifest.Update), plan.Count(manifest.Delete), len(drift))}
			}
			fmt.Fprintln(out, "no differences")
			return nil
		},
	}
	src.bind(cmd)
	cmd.Flags().BoolVar(&prune, "prune", false, "also show what apply --prune would delete")
	cfg.bind(cmd)
	return cmd
}

// fetchDrift lists the set's definitions changed outside of code.
func fetchDrift(ctx context.Context, cfg *Config, set string) ([]definitions.Drift, error) {
	var out struct {
		Drift []definitions.Drift `json:"drift"`
	}
	if err := cfg.Client().Do(ctx, http.MethodGet, "/api/v1/definitions/drift?set="+url.QueryEscape(set), nil, &out); err != nil {
		return nil, fmt.Errorf("drift of set %s: %w", set, err)
	}
	return out.Drift, nil
}

// printPlan prints the steps that change something: "+" create, "~"
// update (with its changes when detail), "-" delete.
func printPlan(w io.Writer, plan *manifest.Plan, detail bool) {
	for _, s := range plan.Steps {
		switch s.Op {
		case manifest.Create:
			fmt.Fprintf(w, "+ %s\n", s.Name())
		case manifest.Delete:
			fmt.Fprintf(w, "- %s\n", s.Name())
		case manifest.Update:
			fmt.Fprintf(w, "~ %s\n", s.Name())
			if detail {
				printChanges(w, s.Changes)
			}
		}
	}
}

func printChanges(w io.Writer, changes []definitions.Change) {
	for _, c := range changes {
		fmt.Fprintf(w, "    %s: %s → %s\n", c.Path, jsonValue(c.Old), jsonValue(c.New))
	}
}

func printDrift(w io.Writer, drift []definitions.Drift) {
	sort.SliceStable(drift, func(i, j int) bool { return definitions.Rank(drift[i].Kind) < definitions.Rank(drift[j].Kind) })
	for _, d := range drift {
		fmt.Fprintf(w, "! %s %s %s outside of code since it was applied (%s)\n", d.Kind, d.ID, d.State, d.AppliedAt.Format("2006-01-02 15:04:05Z07:00"))
		printChanges(w, d.Changes)
	}
}

// jsonValue shows a value compactly ("(none)" when absent).
func jsonValue(v any) string {
	if v == nil {
		return "(none)"
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

func exportCmd(cfg *Config) *cobra.Command {
	var dir string
	var entities bool
	cmd := &cobra.Command{
		Use:   "export -d DIR [--entities]",
		Short: "Write the portal's definitions as files that apply reproduces exactly",
		Long: `Writes one multi-document YAML file per kind (blueprints.yaml, actions.yaml, …,
entities.yaml with --entities) to DIR. Secrets are never exported: an integration's
secrets and webhook headers become {"fromEnv": "PORTICO_…"} references to set before
applying. Built-in blueprints (_user, _team) and tokens are left out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return &ExitError{ExitFailure, errors.New("name the directory with -d DIR")}
			}
			counts, err := manifest.Export(cmd.Context(), cfg.Client(), dir, entities)
			if err != nil {
				return &ExitError{ExitFailure, err}
			}
			out := cmd.OutOrStdout()
			total := 0
			for _, k := range definitions.Kinds {
				if counts[k] > 0 {
					fmt.Fprintf(out, "%-12s %d\n", k, counts[k])
					total += counts[k]
				}
			}
			fmt.Fprintf(out, "exported %d definitions to %s\n", total, dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "the directory to write to (created when missing)")
	cmd.Flags().BoolVar(&entities, "entities", false, "export entities too")
	cfg.bind(cmd)
	return cmd
}
