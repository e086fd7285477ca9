package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/cli/progress"
	"github.com/portico-dev/portico/host/integrations"
	"github.com/portico-dev/portico/internal/client"
)

func integrationCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{Use: "integration", Aliases: []string{"integrations"}, Short: "Installed integrations: resyncs"}
	cmd.AddCommand(integrationResyncCmd(cfg))
	cfg.bind(cmd)
	return cmd
}

// syncPoll is how often resync --wait reads the sync's record.
const syncPoll = 500 * time.Millisecond

func integrationResyncCmd(cfg *Config) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "resync ID [--wait]",
		Short: "Start a full resync of an installation",
		Long: `Starts a resync and prints its id. With --wait, shows its progress (items seen,
entities written, unchanged and deleted) on stderr until it ends, then its
record; exits 1 when the resync failed.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cfg.arg(integrationNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			ctx, c, id := cmd.Context(), cfg.Client(), args[0]
			s, err := c.Resync(ctx, id)
			var apiErr *client.Error
			if errors.As(err, &apiErr) && apiErr.Status == 409 {
				return fmt.Errorf("resync %s: %s (wait for it to end: portico get integration %s)", id, apiErr.Message, id)
			}
			if err != nil {
				return explain(c, "resync "+id, err)
			}
			if !wait {
				return p.print(s, func(*table) { fmt.Fprintln(p.w, s.ID) })
			}
			if s, err = waitSync(ctx, c, id, s); err != nil {
				return explain(c, "resync "+id, err)
			}
			if err := p.print(s, func(t *table) { syncRows(t, s) }); err != nil {
				return err
			}
			if s.Status == integrations.SyncFailed {
				return &ExitError{ExitBelow, fmt.Errorf("resync %s of %s failed: %s", s.ID, id, syncReason(s))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the resync to end, with a progress bar")
	return cmd
}

// waitSync follows sync s of installation id until it ends, drawing its
// progress on stderr.
func waitSync(ctx context.Context, c *client.Client, id string, s *integrations.Sync) (*integrations.Sync, error) {
	bar := progress.New(os.Stderr, "resync "+id, 0)
	defer bar.Finish()
	for {
		bar.Set(s.Items, fmt.Sprintf("seen %d, written %d, unchanged %d, deleted %d", s.Items, s.Upserts, s.Unchanged, s.Deletes))
		if s.Status != integrations.SyncRunning {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(syncPoll):
		}
		next, err := c.Sync(ctx, id, s.ID)
		if err != nil {
			return nil, err
		}
		s = next
	}
}

func syncRows(t *table, s *integrations.Sync) {
	t.row("SYNC", "STATUS", "ITEMS", "WRITTEN", "UNCHANGED", "DELETED", "ERRORS", "TOOK")
	took := "-"
	if s.EndedAt != nil {
		took = s.EndedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
	}
	t.row(s.ID, s.Status, s.Items, s.Upserts, s.Unchanged, s.Deletes, s.ErrorCount, took)
}

// syncReason is the first errors of a failed sync.
func syncReason(s *integrations.Sync) string {
	var msgs []string
	for i, e := range s.Errors {
		if i == 3 {
			msgs = append(msgs, fmt.Sprintf("and %d more", max(s.ErrorCount, len(s.Errors))-3))
			break
		}
		msgs = append(msgs, e.Message)
	}
	if s.DeletionSkipped != "" {
		msgs = append(msgs, "deletion skipped: "+s.DeletionSkipped)
	}
	if len(msgs) == 0 {
		return "no reason given"
	}
	return strings.Join(msgs, "; ")
}
