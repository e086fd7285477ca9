package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/internal/client"
)

// Shell completion of names from the portal the flags (or environment)
// name; `portico completion bash|zsh|fish|powershell` writes the script.
// A portal that cannot be reached completes nothing.

// completeTimeout bounds the API calls of one completion.
const completeTimeout = 5 * time.Second

// completer is a ValidArgsFunction (or a flag's completion function).
type completer = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective)

// names lists the candidates starting with prefix.
type names func(ctx context.Context, c *client.Client, prefix string) ([]string, cobra.ShellCompDirective)

// arg completes a command's first argument with n, and nothing after it.
func (cfg *Config) arg(n names) completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return cfg.flag(n)(cmd, args, toComplete)
	}
}

// flag completes a flag's value with n.
func (cfg *Config) flag(n names) completer {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
		defer cancel()
		return n(ctx, cfg.Client(), toComplete)
	}
}

// withTitle is a completion candidate with its description.
func withTitle(name, title string) string {
	if title == "" {
		return name
	}
	return name + "\t" + title
}

const noFiles = cobra.ShellCompDirectiveNoFileComp

func blueprintNames(ctx context.Context, c *client.Client, prefix string) ([]string, cobra.ShellCompDirective) {
	bps, err := c.Blueprints(ctx)
	if err != nil {
		return nil, noFiles
	}
	var out []string
	for _, b := range bps {
		if strings.HasPrefix(b.Identifier, prefix) {
			out = append(out, withTitle(b.Identifier, b.Title))
		}
	}
	return out, noFiles
}

// entityNames completes BLUEPRINT/ first, then the identifiers of that
// blueprint's entities (its first 1,000).
func entityNames(ctx context.Context, c *client.Client, prefix string) ([]string, cobra.ShellCompDirective) {
	bp, id, ok := strings.Cut(prefix, "/")
	if !ok {
		bps, err := c.Blueprints(ctx)
		if err != nil {
			return nil, noFiles
		}
		var out []string
		for _, b := range bps {
			if strings.HasPrefix(b.Identifier, bp) {
				out = append(out, b.Identifier+"/")
			}
		}
		return out, noFiles | cobra.ShellCompDirectiveNoSpace
	}
	page, err := c.Entities(ctx, bp, 1000, "")
	if err != nil {
		return nil, noFiles
	}
	var out []string
	for _, e := range page.Entities {
		if strings.HasPrefix(e.Identifier, id) {
			out = append(out, withTitle(bp+"/"+e.Identifier, e.Title))
		}
	}
	return out, noFiles
}

func actionNames(ctx context.Context, c *client.Client, prefix string) ([]string, cobra.ShellCompDirective) {
	as, err := c.Actions(ctx)
	if err != nil {
		return nil, noFiles
	}
	var out []string
	for _, a := range as {
		if strings.HasPrefix(a.Identifier, prefix) {
			out = append(out, withTitle(a.Identifier, a.Title))
		}
	}
	return out, noFiles
}

// runNames completes the ids of the 50 newest runs the caller sees, in
// status when given.
func runNames(status string) names {
	return func(ctx context.Context, c *client.Client, prefix string) ([]string, cobra.ShellCompDirective) {
		page, err := c.Runs(ctx, client.RunFilter{Status: status, Limit: 50})
		if err != nil {
			return nil, noFiles
		}
		var out []string
		for _, r := range page.Runs {
			if strings.HasPrefix(r.ID, prefix) {
				out = append(out, withTitle(r.ID, r.Action+" "+r.Status))
			}
		}
		return out, noFiles
	}
}

func integrationNames(ctx context.Context, c *client.Client, prefix string) ([]string, cobra.ShellCompDirective) {
	all, err := c.Integrations(ctx)
	if err != nil {
		return nil, noFiles
	}
	var out []string
	for _, s := range all {
		if strings.HasPrefix(s.ID, prefix) {
			out = append(out, withTitle(s.ID, s.Plugin))
		}
	}
	return out, noFiles
}
