package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/actions/redisactions"
	"github.com/portico-dev/portico/core/api"
)

// frame is one SSE block: its fields, or the comment of a comment-only
// block.
type frame struct {
	ID, Event, Data, Comment string
}

func (f frame) String() string {
	if f.Comment != "" {
		return ": " + f.Comment
	}
	return fmt.Sprintf("id=%q event=%q data=%s", f.ID, f.Event, f.Data)
}

// logStream is an open run log stream.
type logStream struct {
	res    *http.Response
	frames chan frame
	cancel context.CancelFunc
	done   chan struct{}
}

// openRunLogs GETs path with the admin token and extra headers ("k: v")
// and, on a 200, reads the body as SSE frames.
func openRunLogs(t *testing.T, e *accessEnv, path string, headers ...string) *logStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &logStream{res: res, frames: make(chan frame, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.frames)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var f frame
		empty := true
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if !empty {
					s.frames <- f
				}
				f, empty = frame{}, true
				continue
			}
			empty = false
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "":
				f.Comment = value
			case "id":
				f.ID = value
			case "event":
				f.Event = value
			case "data":
				f.Data = value
			default:
				f.Comment = "unexpected field: " + line
			}
		}
	}()
	t.Cleanup(func() { s.cancel(); <-s.done })
	return s
}

// next returns the next frame, failing after 30s or at the end.
func (s *logStream) next(t *testing.T) frame {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatal("stream ended")
		}
		return f
	case <-time.After(30 * time.Second):
		t.Fatal("no frame within 30s")
	}
	return frame{}
}

// expect reads frames and compares them with want, exactly.
func (s *logStream) expect(t *testing.T, want ...frame) {
	t.Helper()
	var got []frame
	for range want {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatalf("stream ended after %v, want %v", got, want)
			}
			got = append(got, f)
		case <-time.After(30 * time.Second):
			t.Fatalf("got %v, then nothing for 30s; want %v", got, want)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frames\n got %v\nwant %v", got, want)
	}
}

// ended asserts the server closed the stream with nothing more.
func (s *logStream) ended(t *testing.T) {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if ok {
			t.Fatalf("unexpected frame %v", f)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stream still open 30s after the end")
	}
}

// quiet asserts no frame arrives for a moment.
func (s *logStream) quiet(t *testing.T) {
	t.Helper()
	select {
	case f := <-s.frames:
		t.Fatalf("unexpected frame %v", f)
	case <-time.After(200 * time.Millisecond):
	}
}

var logT0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func logLine(i int) actions.LogLine {
	return actions.LogLine{At: logT0.Add(time.Duration(i) * time.Second), Level: "info", Step: "ship", Message: fmt.Sprintf("line %d", i)}
}

// testRun is a run of the deploy action with n log lines.
func testRun(id string, rev int, status string, n int) *actions.Run {
	r := &actions.Run{
		ID: id, Action: "deploy", ActionVersion: 1, Status: status, Blueprint: "service", Entity: "checkout",
		Inputs: map[string]any{"version": "1.2"}, TriggeredBy: "alice@example.com",
		Steps: []actions.StepRun{}, Approvals: []actions.ApprovalRecord{}, Logs: []actions.LogLine{}, Affected: []actions.Affected{},
		Revision: rev, CreatedAt: logT0, UpdatedAt: logT0.Add(time.Duration(rev) * time.Second),
	}
	for i := range n {
		r.Logs = append(r.Logs, logLine(i))
	}
	if r.Finished() {
		end := r.UpdatedAt
		r.EndedAt = &end
	}
	return r
}

func logFrame(i int) frame {
	raw, _ := json.Marshal(logLine(i))
	return frame{ID: fmt.Sprint(i), Event: "log", Data: string(raw)}
}

func statusFrame(id, status string) frame {
	return frame{Event: "status", Data: fmt.Sprintf(`{"id":%q,"status":%q}`, id, status)}
}

func endFrame(r *actions.Run) frame {
	raw, _ := json.Marshal(r)
	return frame{Event: "end", Data: string(raw)}
}

// newRunLogsEnv is a portal with actions and a second store on its Redis:
// the worker that mirrors run records.
func newRunLogsEnv(t *testing.T) (*accessEnv, *redisactions.Store) {
	e := newActionsEnv(t, &fakeRunner{runs: map[string]*actions.Run{}})
	return e, redisactions.New(e.rdb, redisactions.Options{})
}

func save(t *testing.T, worker *redisactions.Store, r *actions.Run) {
	t.Helper()
	if err := worker.SaveRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

// Lines arrive as the worker mirrors new revisions; the stream ends with
// the finished run.
func TestRunLogStreamFollowsTheRun(t *testing.T) {
	t.Parallel()
	e, worker := newRunLogsEnv(t)
	save(t, worker, testRun("run_1", 1, actions.StatusInProgress, 1))

	s := openRunLogs(t, e, "/api/v1/runs/run_1/logs/stream")
	if s.res.StatusCode != 200 || s.res.Header.Get("Content-Type") != "text/event-stream" || s.res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stream answer: %d %v", s.res.StatusCode, s.res.Header)
	}
	s.expect(t, logFrame(0), statusFrame("run_1", actions.StatusInProgress))

	save(t, worker, testRun("run_1", 2, actions.StatusInProgress, 3))
	s.expect(t, logFrame(1), logFrame(2))
	// A stale revision is not stored, so nothing is sent.
	save(t, worker, testRun("run_1", 2, actions.StatusInProgress, 5))
	s.quiet(t)
	// Another run's progress is not this stream's.
	save(t, worker, testRun("run_2", 1, actions.StatusInProgress, 2))
	s.quiet(t)

	final := testRun("run_1", 4, actions.StatusSuccess, 4)
	save(t, worker, final)
	s.expect(t, logFrame(3), statusFrame("run_1", actions.StatusSuccess), endFrame(final))
	s.ended(t)
}

// The stream also answers GET /runs/{id}/logs with Accept:
// text/event-stream; without it that route stays JSON.
func TestRunLogStreamByAcceptHeader(t *testing.T) {
	t.Parallel()
	e, worker := newRunLogsEnv(t)
	save(t, worker, testRun("run_1", 1, actions.StatusWaitingForApproval, 0))

	s := openRunLogs(t, e, "/api/v1/runs/run_1/logs", "Accept: application/json;q=0.5, text/event-stream")
	if s.res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("Content-Type %q", s.res.Header.Get("Content-Type"))
	}
	s.expect(t, statusFrame("run_1", actions.StatusWaitingForApproval))
	save(t, worker, testRun("run_1", 2, actions.StatusInProgress, 1))
	s.expect(t, logFrame(0), statusFrame("run_1", actions.StatusInProgress))
	final := testRun("run_1", 3, actions.StatusFailure, 1)
	save(t, worker, final)
	s.expect(t, statusFrame("run_1", actions.StatusFailure), endFrame(final))
	s.ended(t)

	r := e.must(200, "GET", "/api/v1/runs/run_1/logs", nil)
	want, _ := json.Marshal(map[string]any{"id": "run_1", "status": actions.StatusFailure, "logs": []actions.LogLine{logLine(0)}})
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || string(r.Raw) != string(want) {
		t.Fatalf("JSON logs: %q %s, want %s", r.Header.Get("Content-Type"), r.Raw, want)
	}
	rejected := openRunLogs(t, e, "/api/v1/runs/run_1/logs", "Accept: text/event-stream;q=0, application/json")
	if ct := rejected.res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("q=0 event stream answered %q", ct)
	}
}

// Last-Event-ID (or ?after) resumes after a line.
func TestRunLogStreamResumes(t *testing.T) {
	t.Parallel()
	e, worker := newRunLogsEnv(t)
	save(t, worker, testRun("run_1", 1, actions.StatusInProgress, 3))

	s := openRunLogs(t, e, "/api/v1/runs/run_1/logs/stream", "Last-Event-ID: 1")
	s.expect(t, logFrame(2), statusFrame("run_1", actions.StatusInProgress))
	final := testRun("run_1", 2, actions.StatusSuccess, 5)
	save(t, worker, final)
	s.expect(t, logFrame(3), logFrame(4), statusFrame("run_1", actions.StatusSuccess), endFrame(final))
	s.ended(t)

	// On a finished run: the rest, then the end at once.
	s = openRunLogs(t, e, "/api/v1/runs/run_1/logs?after=3", "Accept: text/event-stream")
	s.expect(t, logFrame(4), statusFrame("run_1", actions.StatusSuccess), endFrame(final))
	s.ended(t)
	// ?after wins over the header; past the last line only the status
	// and the end remain.
	s = openRunLogs(t, e, "/api/v1/runs/run_1/logs/stream?after=9", "Last-Event-ID: 0")
	s.expect(t, statusFrame("run_1", actions.StatusSuccess), endFrame(final))
	s.ended(t)

	for _, bad := range []string{"?after=x", "?after=-1"} {
		checkError(t, e.do("GET", "/api/v1/runs/run_1/logs/stream"+bad, nil), 400, "malformed_request", nil)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/runs/run_1/logs/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Last-Event-ID", "1-0")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("Last-Event-ID 1-0: %d", res.StatusCode)
	}
}

// An unknown run is a 404 in every form; reading needs the read scope.
func TestRunLogStreamErrors(t *testing.T) {
	t.Parallel()
	e, worker := newRunLogsEnv(t)
	save(t, worker, testRun("run_1", 1, actions.StatusInProgress, 1))
	checkError(t, e.do("GET", "/api/v1/runs/nope/logs/stream", nil), 404, "not_found", nil)
	checkError(t, e.do("GET", "/api/v1/runs/nope/logs", nil), 404, "not_found", nil)
	s := openRunLogs(t, e, "/api/v1/runs/nope/logs", "Accept: text/event-stream")
	if s.res.StatusCode != 404 || !strings.HasPrefix(s.res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("unknown run streamed: %d %q", s.res.StatusCode, s.res.Header.Get("Content-Type"))
	}

	checkError(t, e.doAuth("GET", "/api/v1/runs/run_1/logs/stream", nil, ""), 401, "unauthorized", nil)
	e.user("dave@example.com", "member")
	_, runOnly := e.mint("dave@example.com", "run")
	forbidden(t, e.as(runOnly, "GET", "/api/v1/runs/run_1/logs/stream", nil), "read")
	_, reader := e.mint("dave@example.com", "read")
	final := testRun("run_1", 2, actions.StatusCancelled, 1)
	save(t, worker, final)
	r := e.as(reader, "GET", "/api/v1/runs/run_1/logs/stream", nil)
	want := strings.Join([]string{
		"id: 0", "event: log", "data: " + logFrame(0).Data, "",
		"event: status", `data: {"id":"run_1","status":"CANCELLED"}`, "",
		"event: end", "data: " + endFrame(final).Data, "", "",
	}, "\n")
	if r.Status != 200 || string(r.Raw) != want {
		t.Fatalf("finished run as a reader: %d\n%s\nwant\n%s", r.Status, r.Raw, want)
	}
}

// An idle stream gets a ": ping" comment every heartbeat, and each beat
// re-reads the run: a change whose notification was lost still arrives.
// Not parallel: it changes the heartbeat.
func TestRunLogStreamHeartbeat(t *testing.T) {
	t.Cleanup(api.SetRunLogsHeartbeat(100 * time.Millisecond)) // runs after the server closed
	e, worker := newRunLogsEnv(t)
	save(t, worker, testRun("run_1", 1, actions.StatusInProgress, 1))
	s := openRunLogs(t, e, "/api/v1/runs/run_1/logs/stream")
	s.expect(t, logFrame(0), statusFrame("run_1", actions.StatusInProgress))
	s.expect(t, frame{Comment: "ping"}, frame{Comment: "ping"})

	// Written behind the store's back: no notification.
	raw, _ := json.Marshal(testRun("run_1", 2, actions.StatusInProgress, 2))
	if err := e.rdb.HSet(context.Background(), "portico|actions|run|run_1", "rev", 2, "json", raw).Err(); err != nil {
		t.Fatal(err)
	}
	// Beats that came before the write may still be ahead of the line.
	for {
		f := s.next(t)
		if f == (frame{Comment: "ping"}) {
			continue
		}
		if f != logFrame(1) {
			t.Fatalf("after the write: %v, want %v", f, logFrame(1))
		}
		break
	}
	s.expect(t, frame{Comment: "ping"})
}
