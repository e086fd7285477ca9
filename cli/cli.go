// Package cli holds the client side of the portico binary: the commands
// that talk to a running portal only through its public HTTP API
// (internal/client), found with --server / PORTICO_SERVER and
// authenticated with --token / PORTICO_TOKEN.
package cli

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/portico-dev/portico/internal/client"
)

// DefaultServer is the portal a client command talks to unless told
// otherwise: where `portico dev` listens.
const DefaultServer = "http://127.0.0.1:7070"

// Exit codes: 0 success, 1 a "no" answer (a scorecard level below the
// minimum, a diff that found differences) or an ordinary failure, 2 a
// check that could not be made.
const (
	ExitBelow   = 1
	ExitFailure = 2
)

// ExitError ends the process with Code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// CodeOf is the exit code err asks for (1 when it names none).
func CodeOf(err error) int {
	var ec *ExitError
	if errors.As(err, &ec) {
		return ec.Code
	}
	return 1
}

// Config is what every client command shares: where the portal is, the
// token, the output format.
type Config struct {
	Server string
	Token  string
	Output string
}

// Group is the help group of the client commands (cobra.Group ID).
const Group = "client"

// Commands returns the client commands, ready to add to the root, in
// help group Group.
func Commands() []*cobra.Command {
	cfg := &Config{}
	cmds := []*cobra.Command{
		scorecardCmd(cfg),
		getCmd(cfg), searchCmd(cfg), describeCmd(cfg),
		runCmd(cfg), approveCmd(cfg), declineCmd(cfg), runsCmd(cfg),
		pluginCmd(cfg), integrationCmd(cfg), importCmd(cfg),
		applyCmd(cfg), diffCmd(cfg), exportCmd(cfg),
	}
	for _, c := range cmds {
		c.GroupID = Group
	}
	return cmds
}

// bind adds the shared persistent flags to a top-level client command;
// PORTICO_SERVER, PORTICO_TOKEN and PORTICO_OUTPUT stand in for flags
// not given.
func (c *Config) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.Server, "server", "", "the portal's URL (env PORTICO_SERVER, default "+DefaultServer+")")
	f.StringVar(&c.Token, "token", "", "an API token (env PORTICO_TOKEN)")
	output := "table"
	if v := os.Getenv("PORTICO_OUTPUT"); v != "" {
		output = v
	}
	f.StringVarP(&c.Output, "output", "o", output, "output format: table, json or yaml (env PORTICO_OUTPUT)")
}

// Client is the API client the flags (or their environment twins) name.
func (c *Config) Client() *client.Client {
	server, token := c.Server, c.Token
	if server == "" {
		server = os.Getenv("PORTICO_SERVER")
	}
	if server == "" {
		server = DefaultServer
	}
	if token == "" {
		token = os.Getenv("PORTICO_TOKEN")
	}
	return client.New(server, token)
}
