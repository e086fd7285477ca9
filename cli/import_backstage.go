package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/cli/backstage"
	"github.com/portico-dev/portico/core/catalog"
)

func importBackstageCmd(cfg *Config) *cobra.Command {
	var prefix string
	var strict, dryRun bool
	cmd := &cobra.Command{
		Use:   "backstage PATH|URL...",
		Short: "Import a Backstage catalog (catalog-info.yaml files, following Locations)",
		Long: `Reads Backstage descriptor files (Component, API, System, Domain, Resource, Group,
User; Location targets are followed, relative ones against the file or URL that
names them), creates the blueprints component, api, system, domain, resource,
group and user (named with --prefix) when missing, and writes every entity with
its references resolved into relations. An entity's identifier is its name, or
namespace/name outside the default namespace. References to entities neither in
the files nor in the portal are listed as warnings (errors with --strict) and
not imported.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cfg); err != nil {
				return err
			}
			ctx, api := cmd.Context(), cfg.Client()
			set, err := backstage.Load(ctx, args, backstage.Read)
			if err != nil {
				return err
			}
			imp := backstage.Map(set, prefix)

			// The blueprints: create the missing ones, check the others.
			want := backstage.Blueprints(prefix)
			byID := map[string]*catalog.Blueprint{}
			var missing []*catalog.Blueprint
			var problems []string
			for _, bp := range want {
				byID[bp.Identifier] = bp
				have, err := api.FindBlueprint(ctx, bp.Identifier)
				if err != nil {
					return &ExitError{ExitFailure, fmt.Errorf("blueprint %s: %w", bp.Identifier, err)}
				}
				if have == nil {
					missing = append(missing, bp)
					continue
				}
				for _, p := range backstage.Incompatible(have, bp) {
					problems = append(problems, "blueprint "+bp.Identifier+": "+p)
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("existing blueprints do not fit a Backstage import (--prefix imports into others):\n  %s", strings.Join(problems, "\n  "))
			}
			isMissing := func(bp string) bool {
				for _, m := range missing {
					if m.Identifier == bp {
						return true
					}
				}
				return false
			}
			found, err := existing(ctx, api, imp.Targets(), func(bp string) bool { return !isMissing(bp) })
			if err != nil {
				return err
			}
			warnings := append(imp.Warnings, imp.Keep(found)...)
			if strict && len(warnings) > 0 {
				for _, w := range warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "error:", w)
				}
				return fmt.Errorf("%d problems (--strict): nothing written", len(warnings))
			}
			if dryRun {
				for _, w := range warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d entities, %d blueprints to create (dry run: nothing written)\n", len(imp.Entities), len(missing))
				return nil
			}
			// Relations may point at each other's blueprints (group ↔
			// user): create them bare first, then with their relations.
			for _, pass := range []bool{false, true} {
				for _, bp := range missing {
					put := *bp
					if !pass {
						put.Relations = nil
					}
					if err := api.PutBlueprint(ctx, &put); err != nil {
						return &ExitError{ExitFailure, fmt.Errorf("create blueprint %s: %w", bp.Identifier, err)}
					}
				}
			}
			for _, bp := range missing {
				fmt.Fprintf(cmd.ErrOrStderr(), "created blueprint %s\n", bp.Identifier)
			}
			results, err := writeAll(ctx, api, cmd.ErrOrStderr(), imp.Entities, func(bp, rel string) string {
				return byID[bp].Relations[rel].Target
			})
			if err != nil {
				return err
			}
			return report(cfg, cmd.OutOrStdout(), cmd.ErrOrStderr(), importReport{Results: results, Warnings: warnings}, func(i int) string {
				return imp.Sources[i]
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "prefix of the blueprints' identifiers (e.g. bs- for bs-component)")
	f.BoolVar(&strict, "strict", false, "fail, writing nothing, when a reference cannot be resolved or an entity is skipped")
	f.BoolVar(&dryRun, "dry-run", false, "read and resolve everything, write nothing")
	return cmd
}
