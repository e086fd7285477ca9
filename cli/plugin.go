package cli

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func pluginCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Publish and list integration plugins"}
	cmd.AddCommand(pluginPublishCmd(cfg), &cobra.Command{
		Use:     "ls [NAME[@VERSION]]",
		Aliases: []string{"list"},
		Short:   "List the published plugins",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			return listPlugins(cmd, cfg, name)
		},
	})
	cfg.bind(cmd)
	return cmd
}

// wasmMagic starts every WebAssembly module.
var wasmMagic = []byte("\x00asm")

func pluginPublishCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "publish FILE.wasm",
		Short: "Publish a Wasm plugin to the portal (no restart needed)",
		Long: `Uploads a WebAssembly module; the portal compiles it, reads its info and
records name@version. The same bytes again change nothing; other bytes under a
published name@version are refused (bump the plugin's version).`,
		Example: `  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o example.wasm ./plugins/example
  portico plugin publish example.wasm`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"wasm"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cfg.printer(cmd)
			if err != nil {
				return err
			}
			module, err := os.ReadFile(args[0])
			if err != nil {
				return &ExitError{ExitFailure, err}
			}
			if !bytes.HasPrefix(module, wasmMagic) {
				return &ExitError{ExitFailure, fmt.Errorf("%s is not a WebAssembly module", args[0])}
			}
			c := cfg.Client()
			pl, err := c.PublishWasm(cmd.Context(), module)
			if err != nil {
				return explain(c, "publish "+args[0], err)
			}
			return p.print(pl, func(*table) {
				what := "published"
				if pl.Result != "created" {
					what = "already published (same bytes)"
				}
				fmt.Fprintf(p.w, "%s %s (sha256 %s, %d bytes)\n", pl.Ref(), what, short(pl.SHA256), pl.Size)
			})
		},
	}
}
