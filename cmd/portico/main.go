// Command portico is the Portico binary: `portico dev` runs the whole portal
// in one process with embedded defaults, `portico serve` runs the stateless
// API against a real Redis, `portico worker` runs the Temporal worker and
// the plugin host apart from the API.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portico-dev/portico/cli"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "portico:", err)
		os.Exit(cli.CodeOf(err))
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "portico",
		Short:         "Portico, an open internal developer portal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddGroup(&cobra.Group{ID: "server", Title: "Run a portal:"},
		&cobra.Group{ID: cli.Group, Title: "Use a portal (--server, --token):"})
	for _, c := range []*cobra.Command{devCmd(), serveCmd(), workerCmd(), temporalCmd()} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	root.AddCommand(cli.Commands()...)
	return root
}

// bindEnv gives every flag of cmd a PORTICO_* environment twin
// (--data-dir ↔ PORTICO_DATA_DIR); an explicit flag wins.
func bindEnv(cmd *cobra.Command) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		name := "PORTICO_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		f.Usage += " (env " + name + ")"
		if f.Changed {
			return
		}
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	return firstErr
}

// tuneGC gives the stateless API (its data lives in Redis) a soft memory
// limit of 180 MiB unless GOMEMLIMIT says otherwise: bulk requests allocate
// in bursts, and the limit makes the collector run before those bursts
// inflate the resident set. `dev` keeps Go's defaults: its embedded Redis
// lives in the same heap.
func tuneGC() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(180 << 20)
	}
}
