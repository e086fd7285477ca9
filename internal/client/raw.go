package client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
)

// Base is the portal's URL the client talks to.
func (c *Client) Base() string { return c.base }

// request builds method path with the client's token.
func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// Upload POSTs body as contentType (a Wasm module, say) to path and
// decodes the JSON answer into out.
func (c *Client) Upload(ctx context.Context, path, contentType string, body []byte, out any) error {
	return c.send(ctx, http.MethodPost, path, contentType, bytes.NewReader(body), out)
}

// Event is one Server-Sent Event.
type Event struct {
	ID   string
	Type string // "message" when the stream names none
	Data string
}

// Stream GETs path as a Server-Sent-Events stream and calls on for each
// event until the server closes the stream, ctx ends or on returns an
// error (io.EOF from on ends the stream without an error). The stream has
// no overall timeout: it lasts as long as the server keeps it open.
func (c *Client) Stream(ctx context.Context, path string, on func(Event) error) error {
	req, err := c.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return errorOf(res.StatusCode, raw)
	}
	err = readEvents(res.Body, on)
	if err == io.EOF {
		return nil
	}
	return err
}

// readEvents parses an event stream (the WHATWG format: "field: value"
// lines, a blank line ends an event, ":" lines are comments).
func readEvents(r io.Reader, on func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				ev.Data = strings.Join(data, "\n")
				if ev.Type == "" {
					ev.Type = "message"
				}
				if err := on(ev); err != nil {
					return err
				}
			}
			ev, data = Event{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		case "id":
			ev.ID = value
		}
	}
	return sc.Err()
}
