package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/cli/csvimport"
)

func importCSVCmd(cfg *Config) *cobra.Command {
	var blueprint, sep string
	var skipInvalid, dryRun bool
	cmd := &cobra.Command{
		Use:   "csv --blueprint <bp> FILE",
		Short: "Import entities of one blueprint from a CSV file",
		Long: `Reads a CSV file whose header names the columns: identifier (required), title,
team, a property of the blueprint, or rel:<relation>. Cells are coerced by the
blueprint's schema; an empty cell leaves the field unset. Several values in one
cell (a many relation, teams, array items) are separated by --separator (";").
Every row is checked first, relation targets included (in the file or in the
portal); any bad row is reported with its line and nothing is written, unless
--skip-invalid writes the good rows. Each row replaces its entity (an upsert).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cfg); err != nil {
				return err
			}
			if blueprint == "" {
				return &ExitError{ExitFailure, fmt.Errorf("--blueprint is required")}
			}
			ctx, api := cmd.Context(), cfg.Client()
			bp, err := api.FindBlueprint(ctx, blueprint)
			if err != nil {
				return &ExitError{ExitFailure, fmt.Errorf("blueprint %s: %w", blueprint, err)}
			}
			if bp == nil {
				return fmt.Errorf("no blueprint %q in the portal", blueprint)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			name := filepath.Base(args[0])
			res, err := csvimport.Read(f, name, bp, csvimport.Options{Separator: sep})
			if err != nil {
				return err
			}
			found, err := existing(ctx, api, res.Targets(), func(string) bool { return true })
			if err != nil {
				return err
			}
			res.CheckTargets(found)
			errOut := cmd.ErrOrStderr()
			for _, e := range res.Errors {
				fmt.Fprintln(errOut, e)
			}
			if len(res.Errors) > 0 && !skipInvalid {
				return fmt.Errorf("%s: %d invalid rows: nothing written", name, rowsWith(res.Errors))
			}
			if dryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d valid rows (dry run: nothing written)\n", name, len(res.Entities))
				return nil
			}
			results, err := writeAll(ctx, api, errOut, res.Entities, func(_, rel string) string { return bp.Relations[rel].Target })
			if err != nil {
				return err
			}
			err = report(cfg, cmd.OutOrStdout(), errOut, importReport{Results: results}, func(i int) string {
				return fmt.Sprintf("%s:%d", name, res.Lines[i])
			})
			if err == nil && len(res.Errors) > 0 {
				err = fmt.Errorf("%s: %d invalid rows skipped", name, rowsWith(res.Errors))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&blueprint, "blueprint", "", "the blueprint of the entities")
	f.StringVar(&sep, "separator", csvimport.DefaultSeparator, "separates several values in one cell")
	f.BoolVar(&skipInvalid, "skip-invalid", false, "write the valid rows even when others are invalid (exit 1 all the same)")
	f.BoolVar(&dryRun, "dry-run", false, "check every row, write nothing")
	return cmd
}

// rowsWith counts the distinct lines among errs.
func rowsWith(errs []csvimport.RowError) int {
	lines := map[int]bool{}
	for _, e := range errs {
		lines[e.Line] = true
	}
	return len(lines)
}
