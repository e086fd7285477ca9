package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/internal/client"
)

func runCmd(cfg *Config) *cobra.Command {
	var (
		entity, file string
		inputs       []string
		follow       bool
	)
	cmd := &cobra.Command{
		Use:   "run ACTION [--entity BP/ID] [--input NAME=VALUE …] [-f inputs.json] [--follow]",
		Short: "Trigger a run of an action",
		Long: `Triggers a run of ACTION and prints its id. Inputs come from -f (a JSON or YAML
object) and --input NAME=VALUE (over the file), each typed by the action's
userInputs schema (integers, numbers, booleans, arrays as a,b,c or JSON, objects
as JSON). With --follow, streams the run's log live and exits with its outcome:
0 on SUCCESS, 1 on FAILURE, DECLINED, CANCELLED or TIMED_OUT, with the reason.`,
		Example: `  portico run deploy --entity service/checkout --input version=1.2 --follow
  RUN=$(portico run scaffold -f inputs.yaml)`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cfg.arg(actionNames),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			ctx, c := cmd.Context(), cfg.Client()
			a, err := c.Action(ctx, args[0])
			if err != nil {
				return explain(c, "run "+args[0], err)
			}
			req := actions.TriggerRequest{Entity: entity}
			if bp, id, ok := splitRef(entity); ok {
				if bp != a.Blueprint {
					return &ExitError{ExitFailure, fmt.Errorf("--entity %s: action %s runs on %s entities, not %s", entity, a.Identifier, a.Blueprint, bp)}
				}
				req.Entity = id
			}
			if req.Inputs, err = runInputs(file, inputs, a.UserInputs); err != nil {
				return &ExitError{ExitFailure, err}
			}
			run, err := c.Trigger(ctx, a.Identifier, req)
			if err != nil {
				return explain(c, "run "+a.Identifier, err)
			}
			if !follow {
				return p.print(run, func(t *table) { fmt.Fprintln(p.w, run.ID) })
			}
			if !p.structured() {
				fmt.Fprintln(p.w, run.ID)
			}
			return followRun(ctx, c, p, run.ID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&entity, "entity", "", "the entity to run on, BLUEPRINT/IDENTIFIER (or the identifier alone)")
	f.StringArrayVar(&inputs, "input", nil, "an input as NAME=VALUE (repeatable)")
	f.StringVarP(&file, "file", "f", "", "a JSON or YAML file with the inputs")
	f.BoolVar(&follow, "follow", false, "stream the run's log and exit with its outcome")
	_ = cmd.RegisterFlagCompletionFunc("entity", cfg.flag(entityNames))
	cfg.bind(cmd)
	return cmd
}

func approveCmd(cfg *Config) *cobra.Command { return decideCmd(cfg, actions.DecisionApprove) }
func declineCmd(cfg *Config) *cobra.Command { return decideCmd(cfg, actions.DecisionDecline) }

// decideCmd is approve or decline (decision).
func decideCmd(cfg *Config, decision string) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:               decision + " RUN [--comment TEXT]",
		Short:             strings.ToUpper(decision[:1]) + decision[1:] + " a run waiting for approval",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cfg.arg(runNames(actions.StatusWaitingForApproval)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			c := cfg.Client()
			run, err := c.Decide(cmd.Context(), args[0], actions.DecideRequest{Decision: decision, Comment: comment})
			if err != nil {
				return explain(c, decision+" "+args[0], err)
			}
			return p.print(run, func(*table) {
				fmt.Fprintf(p.w, "%sd %s: %s\n", decision, run.ID, run.Status)
			})
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "a comment recorded with the decision")
	cfg.bind(cmd)
	return cmd
}

func runsCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{Use: "runs", Short: "Action runs: their logs"}
	cmd.AddCommand(runLogsCmd(cfg))
	cfg.bind(cmd)
	return cmd
}

func runLogsCmd(cfg *Config) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs RUN [-f]",
		Short: "Print a run's log; with -f, follow it until the run ends",
		Long: `Prints a run's log. With -f, streams it live until the run ends and exits with
its outcome: 0 on SUCCESS, 1 otherwise, with the reason.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cfg.arg(runNames("")),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			c := cfg.Client()
			if follow {
				return followRun(cmd.Context(), c, p, args[0])
			}
			run, err := c.Run(cmd.Context(), args[0])
			if err != nil {
				return explain(c, "logs of "+args[0], err)
			}
			return p.print(map[string]any{"id": run.ID, "status": run.Status, "logs": run.Logs}, func(*table) {
				for _, l := range run.Logs {
					printLog(p.w, l)
				}
				fmt.Fprintf(p.w, "status: %s\n", run.Status)
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the log until the run ends")
	return cmd
}

// printLog writes one log line.
func printLog(w io.Writer, l actions.LogLine) {
	step := ""
	if l.Step != "" {
		step = " [" + l.Step + "]"
	}
	fmt.Fprintf(w, "%s %-5s%s %s\n", l.At.UTC().Format("15:04:05"), l.Level, step, l.Message)
}

// followAttempts is how many times a log stream that ends before the run
// does is resumed.
const followAttempts = 10

// followRun streams run id's log to p until the run ends: lines and
// status changes as they come (a table), or the final run (JSON, YAML).
// It fails with exit code 1 and the reason when the run did not succeed.
func followRun(ctx context.Context, c *client.Client, p *printer, id string) error {
	last := -1
	var end *actions.Run
	for attempt := 0; end == nil; attempt++ {
		err := c.RunLogs(ctx, id, last, func(ev client.Event) error {
			switch ev.Type {
			case "log":
				var l actions.LogLine
				if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
					return fmt.Errorf("log line %s: %w", ev.ID, err)
				}
				if n, err := strconv.Atoi(ev.ID); err == nil {
					last = n
				}
				if !p.structured() {
					printLog(p.w, l)
				}
			case "status":
				var s struct{ Status string }
				_ = json.Unmarshal([]byte(ev.Data), &s)
				if !p.structured() {
					fmt.Fprintf(p.w, "status: %s\n", s.Status)
				}
			case "end":
				end = &actions.Run{}
				if err := json.Unmarshal([]byte(ev.Data), end); err != nil {
					return fmt.Errorf("the run's end: %w", err)
				}
				return io.EOF
			case "error":
				var msg string
				_ = json.Unmarshal([]byte(ev.Data), &msg)
				return errors.New(msg)
			}
			return nil
		})
		switch {
		case err != nil:
			return explain(c, "follow run "+id, err)
		case end == nil && attempt+1 >= followAttempts:
			return &ExitError{ExitFailure, fmt.Errorf("follow run %s: the log stream kept closing before the run ended", id)}
		case end == nil:
			select { // the stream closed early (a proxy, a restart): resume it
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	if p.structured() {
		if err := p.print(end, nil); err != nil {
			return err
		}
	}
	if end.Status == actions.StatusSuccess {
		if !p.structured() {
			fmt.Fprintf(p.w, "run %s succeeded\n", end.ID)
		}
		return nil
	}
	return &ExitError{ExitBelow, fmt.Errorf("run %s ended %s: %s", end.ID, end.Status, reason(end))}
}

// reason says why a run did not succeed.
func reason(r *actions.Run) string {
	if r.Error != "" {
		return r.Error
	}
	for i := len(r.Approvals) - 1; i >= 0; i-- {
		if a := r.Approvals[i]; a.Decision == actions.DecisionDecline {
			if a.Comment != "" {
				return "declined by " + a.By + ": " + a.Comment
			}
			return "declined by " + a.By
		}
	}
	for _, s := range r.Steps {
		if s.Status == actions.StatusFailure && s.Error != "" {
			return "step " + s.ID + ": " + s.Error
		}
	}
	return "no reason given"
}
