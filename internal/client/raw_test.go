package client

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	stream := ": ping\n\n" +
		"id: 0\nevent: log\ndata: {\"message\": \"a\"}\n\n" +
		"event: status\ndata: {\"status\":\ndata: \"SUCCESS\"}\n\n" +
		"data: plain\n\n" +
		"event: end\ndata: {}\n\n" +
		"event: after\ndata: never read\n\n"
	var got []Event
	err := readEvents(strings.NewReader(stream), func(ev Event) error {
		got = append(got, ev)
		if ev.Type == "end" {
			return io.EOF
		}
		return nil
	})
	want := []Event{
		{ID: "0", Type: "log", Data: `{"message": "a"}`},
		{Type: "status", Data: "{\"status\":\n\"SUCCESS\"}"},
		{Type: "message", Data: "plain"},
		{Type: "end", Data: "{}"},
	}
	if !errors.Is(err, io.EOF) || !reflect.DeepEqual(got, want) {
		t.Errorf("readEvents = %q, %v; want %q and io.EOF", got, err, want)
	}
}

func TestErrorNamesDetails(t *testing.T) {
	e := errorOf(422, []byte(`{"error": {"code": "validation_failed", "message": "invalid run request",
		"details": [{"path": "/inputs/version", "message": "is required"}, {"path": "/entity", "message": "does not exist"}]}}`))
	if got, want := e.Error(), "HTTP 422: invalid run request: /inputs/version is required; /entity does not exist"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := errorOf(502, []byte("<html>")).Error(); got != "HTTP 502" {
		t.Errorf("a body that is not JSON: %q", got)
	}
}
