package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/cli/bulkwrite"
	"github.com/portico-dev/portico/cli/progress"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/client"
)

// importBatch is how many entities one bulk request of an import carries.
const importBatch = 500

func importCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{Use: "import", Short: "Import entities from a CSV file or a Backstage catalog"}
	cmd.AddCommand(importCSVCmd(cfg), importBackstageCmd(cfg))
	cfg.bind(cmd)
	return cmd
}

// importAPI is what an import needs of the portal.
type importAPI interface {
	FindBlueprint(ctx context.Context, id string) (*catalog.Blueprint, error)
	PutBlueprint(ctx context.Context, bp *catalog.Blueprint) error
	WriteEntities(ctx context.Context, entities []*catalog.Entity) ([]client.BulkResult, error)
	ExistingEntities(ctx context.Context, bp string, ids []string) (map[string]bool, error)
}

var _ importAPI = (*client.Client)(nil)

// importReport is what an import prints: the bulk results (the API's
// shape) and the warnings.
type importReport struct {
	Results  []client.BulkResult `json:"results"`
	Warnings []string            `json:"warnings"`
}

// checkOutput refuses an -o an import cannot print, before anything is
// written.
func checkOutput(cfg *Config) error {
	switch cfg.Output {
	case "", "table", "json", "yaml":
		return nil
	}
	return &ExitError{ExitFailure, fmt.Errorf("-o %s: choose table, json or yaml", cfg.Output)}
}

// existing asks the portal which of the identifiers (per blueprint)
// exist, skipping blueprints it has not got.
func existing(ctx context.Context, api importAPI, targets map[string][]string, known func(bp string) bool) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	bps := make([]string, 0, len(targets))
	for bp := range targets {
		bps = append(bps, bp)
	}
	sort.Strings(bps)
	for _, bp := range bps {
		if !known(bp) {
			continue
		}
		found, err := api.ExistingEntities(ctx, bp, targets[bp])
		if err != nil {
			return nil, &ExitError{ExitFailure, fmt.Errorf("look up %s entities: %w", bp, err)}
		}
		out[bp] = found
	}
	return out, nil
}

// writeAll writes entities in bulk requests ordered so that relations
// inside the set point at entities already written, showing progress on
// w. relTarget names the blueprint a relation of a blueprint points at.
func writeAll(ctx context.Context, api importAPI, w io.Writer, entities []*catalog.Entity, relTarget func(bp, rel string) string) ([]client.BulkResult, error) {
	at := make(map[catalog.Ref]int, len(entities))
	for i, e := range entities {
		at[e.Ref()] = i
	}
	batches, err := bulkwrite.Batches(len(entities), func(i int) []int {
		e := entities[i]
		var out []int
		for name, v := range e.Relations {
			bp := relTarget(e.Blueprint, name)
			for _, id := range catalog.RelationIDs(v) {
				if j, ok := at[catalog.Ref{Blueprint: bp, Identifier: id}]; ok {
					out = append(out, j)
				}
			}
		}
		return out
	}, importBatch, catalog.MaxBatch)
	if err != nil {
		return nil, err
	}
	bar := progress.New(w, "import", len(entities))
	defer bar.Finish()
	var results []client.BulkResult
	counts := map[string]int{}
	for _, batch := range batches {
		chunk := make([]*catalog.Entity, len(batch))
		for k, i := range batch {
			chunk[k] = entities[i]
		}
		res, err := api.WriteEntities(ctx, chunk)
		if err != nil {
			return results, &ExitError{ExitFailure, fmt.Errorf("bulk write: %w", err)}
		}
		for k := range res {
			res[k].Index = batch[res[k].Index]
			counts[res[k].Status]++
		}
		results = append(results, res...)
		bar.Set(len(results), countLine(counts))
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Index < results[j].Index })
	return results, nil
}

func countLine(counts map[string]int) string {
	return fmt.Sprintf("created %d, updated %d, unchanged %d, failed %d",
		counts[catalog.StatusCreated], counts[catalog.StatusUpdated], counts[catalog.StatusUnchanged], counts[catalog.StatusError])
}

// report prints an import's outcome in the chosen format, warnings and
// failures on errOut, and fails when an item was refused. source names
// where each entity came from (by index), for messages.
func report(cfg *Config, out, errOut io.Writer, rep importReport, source func(i int) string) error {
	for _, w := range rep.Warnings {
		fmt.Fprintln(errOut, "warning:", w)
	}
	counts := map[string]int{}
	var failed []string
	for _, r := range rep.Results {
		counts[r.Status]++
		if r.Status == catalog.StatusError && r.Error != nil {
			failed = append(failed, fmt.Sprintf("%s: %s/%s: %s", source(r.Index), r.Blueprint, r.Identifier, problem(r.Error)))
		}
	}
	if rep.Results == nil {
		rep.Results = []client.BulkResult{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	switch cfg.Output {
	case "json", "yaml":
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if cfg.Output == "yaml" {
			if raw, err = yaml.JSONToYAML(raw); err != nil {
				return err
			}
		}
		fmt.Fprintln(out, strings.TrimRight(string(raw), "\n"))
	default:
		fmt.Fprintf(out, "%d entities: %s\n", len(rep.Results), countLine(counts))
	}
	for _, f := range failed {
		fmt.Fprintln(errOut, f)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d entities refused by the portal", len(failed), len(rep.Results))
	}
	return nil
}

// problem is a refused item's message with its details.
func problem(p *client.BulkProblem) string {
	var parts []string
	for _, d := range p.Details {
		parts = append(parts, d.Path+": "+d.Message)
	}
	if len(parts) == 0 {
		return p.Message
	}
	return p.Message + " (" + strings.Join(parts, "; ") + ")"
}
