package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/core/catalog"
)

func scorecardCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{Use: "scorecard", Short: "Scorecards from the command line (for CI)"}
	cmd.AddCommand(scorecardCheckCmd(cfg))
	cfg.bind(cmd)
	return cmd
}

func scorecardCheckCmd(cfg *Config) *cobra.Command {
	var scorecard, minLevel string
	cmd := &cobra.Command{
		Use:   "check <blueprint>/<identifier> --scorecard <id> --min-level <level>",
		Short: "Check that an entity stands at or above a scorecard level (a CI gate)",
		Long: `Reads an entity's standing in a scorecard from the portal's API and prints its
level and every rule. Exits 0 when the entity stands at --min-level or above, 1 when
it is below (listing the failing rules up to --min-level), 2 when the check could
not be made.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, id, ok := strings.Cut(args[0], "/")
			switch {
			case !ok || bp == "" || id == "":
				return &ExitError{ExitFailure, fmt.Errorf("%q: name the entity as <blueprint>/<identifier>", args[0])}
			case scorecard == "":
				return &ExitError{ExitFailure, errors.New("--scorecard is required")}
			case minLevel == "":
				return &ExitError{ExitFailure, errors.New("--min-level is required")}
			}
			res, err := cfg.Client().EntityScorecard(cmd.Context(), bp, id, scorecard)
			if err != nil {
				return &ExitError{ExitFailure, fmt.Errorf("%s/%s, scorecard %s: %w", bp, id, scorecard, err)}
			}
			return checkLevel(cmd.OutOrStdout(), res, minLevel)
		},
	}
	f := cmd.Flags()
	f.StringVar(&scorecard, "scorecard", "", "the scorecard's identifier")
	f.StringVar(&minLevel, "min-level", "", "the lowest level that passes")
	return cmd
}

// checkLevel prints res and says whether it stands at min or above.
func checkLevel(w io.Writer, res *catalog.EntityScorecard, min string) error {
	want := catalog.LevelRank(res.Levels, min)
	if want < 0 {
		var names []string
		for _, l := range res.Levels {
			names = append(names, l.Title)
		}
		return &ExitError{ExitFailure, fmt.Errorf("level %q is not one of scorecard %s's levels (%s)", min, res.Scorecard, strings.Join(names, ", "))}
	}
	level := res.Level
	if !res.Graded {
		level = "not graded (the scorecard's filter leaves it out)"
	}
	fmt.Fprintf(w, "%s/%s: %s %s\n", res.Blueprint, res.Identifier, res.Scorecard, level)
	var failing []catalog.EntityRuleResult
	for _, r := range res.Rules {
		mark := "✓"
		if !r.Passed {
			mark = "✗"
			if catalog.LevelRank(res.Levels, r.Level) <= want {
				failing = append(failing, r)
			}
		}
		fmt.Fprintf(w, "  %s %s (%s)\n", mark, ruleName(r), r.Level)
	}
	got := catalog.LevelRank(res.Levels, res.Level)
	if res.Graded && got >= want {
		fmt.Fprintf(w, "ok: %s is at or above %s\n", res.Level, min)
		return nil
	}
	if len(failing) > 0 {
		fmt.Fprintf(w, "failing rules up to %s:\n", min)
		for _, r := range failing {
			fmt.Fprintf(w, "  ✗ %s (%s)\n", ruleName(r), r.Level)
		}
	}
	if !res.Graded {
		return &ExitError{ExitBelow, fmt.Errorf("%s/%s is not graded by scorecard %s", res.Blueprint, res.Identifier, res.Scorecard)}
	}
	return &ExitError{ExitBelow, fmt.Errorf("%s/%s is at %s, below %s", res.Blueprint, res.Identifier, res.Level, min)}
}

func ruleName(r catalog.EntityRuleResult) string {
	if r.Title != "" {
		return r.Title + " [" + r.Identifier + "]"
	}
	return r.Identifier
}
