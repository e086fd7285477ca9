package cli

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/portico-dev/portico/internal/client"
)

// explain turns an API call's error into a one-line message saying what
// went wrong with what (what names the call: "get entity service/a"):
// an unreachable portal (exit 2), a refused token, or the server's own
// message with the paths it names.
func explain(c *client.Client, what string, err error) error {
	var apiErr *client.Error
	var urlErr *url.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == 401:
		return fmt.Errorf("%s: the portal at %s refused the token (%v): set --token or PORTICO_TOKEN", what, c.Base(), err)
	case errors.As(err, &urlErr):
		return &ExitError{ExitFailure, fmt.Errorf("%s: cannot reach the portal at %s (%v): is it running? (--server or PORTICO_SERVER)", what, c.Base(), urlErr.Err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}
