// Package automations makes the portal react to changes: an automation
// names a trigger (an event of the catalog's change stream, or a cron
// schedule), a jq condition and what to invoke (an action run, a signed
// webhook, a plugin action, an entity upsert or delete). A Dispatcher
// reads the change stream from a durable position and starts one
// delivery per matching (automation, event) through a Starter (Temporal,
// in package workflows), which executes it with Service.Deliver.
// Definitions, signing secrets, the position and delivery records live
// in a Store (automations/redisautomations).
package automations

import (
	"encoding/json"
	"time"

	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
)

// Trigger events an automation may name besides the catalog's own event
// types (catalog.Event*).
const (
	// EventEntityAny matches entity.created, entity.updated and
	// entity.deleted.
	EventEntityAny = "entity.any"
	// EventSchedule is the type of the event a cron schedule fires.
	EventSchedule = "schedule"
)

// Invoke types.
const (
	InvokeAction  = "action"
	InvokeWebhook = "webhook"
	InvokePlugin  = "plugin"
	InvokeUpsert  = "upsert"
	InvokeDelete  = "delete"
)

// Delivery statuses.
const (
	StatusStarted   = "started"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// DepthLimit is how long a chain of automation-caused events may grow:
// an event at this depth is not delivered (its delivery fails with
// ErrDepthLimit's message).
const DepthLimit = 5

// ErrDepthLimit is the error recorded for an event too deep in a chain.
const ErrDepthLimit = "automation depth limit reached"

// Automation is an automation definition (DESIGN §4).
type Automation struct {
	Identifier  string  `json:"identifier"`
	Title       string  `json:"title,omitempty"`
	Description string  `json:"description,omitempty"`
	Trigger     Trigger `json:"trigger"`
	// Condition is jq over {trigger, diff: {before, after}, entity}; the
	// automation fires when it yields true (empty: always).
	Condition string    `json:"condition,omitempty"`
	Invoke    Invoke    `json:"invoke"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Trigger says which events fire an automation: Event (a catalog event
// type or entity.any) narrowed by Blueprint, Action (run events),
// Scorecard and Direction (scorecard.level_changed); or a cron Schedule.
type Trigger struct {
	Event     string `json:"event,omitempty"`
	Blueprint string `json:"blueprint,omitempty"`
	Action    string `json:"action,omitempty"`
	Scorecard string `json:"scorecard,omitempty"`
	Direction string `json:"direction,omitempty"` // improved | degraded
	Schedule  string `json:"schedule,omitempty"`  // cron, e.g. "0 3 * * *"
}

// Invoke is what an automation does. String fields documented as jq are
// evaluated over the same input as the condition.
type Invoke struct {
	Type string `json:"type"`
	// action: Action runs with Inputs (jq → object) on Entity (jq →
	// identifier; default .entity.identifier for an action of the
	// event's blueprint).
	Action string `json:"action,omitempty"`
	Inputs string `json:"inputs,omitempty"`
	Entity string `json:"entity,omitempty"`
	// webhook: a signed POST (or Method) of Body (jq; default {automation,
	// event, entity}). Headers are write-only, as on an action.
	URL        string            `json:"url,omitempty"`
	Method     string            `json:"method,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	HeadersSet []string          `json:"headersSet,omitempty"`
	Body       string            `json:"body,omitempty"`
	// plugin: Integration's Action with Inputs.
	Integration string `json:"integration,omitempty"`
	// upsert: Entity (jq → an entity document with its identifier) into
	// Blueprint; delete: Entity (jq → identifier; default
	// .entity.identifier) of Blueprint. Blueprint defaults to the event's.
	Blueprint string `json:"blueprint,omitempty"`
	// Retry is the delivery's retry policy (default: DefaultRetry).
	Retry *actions.Retry `json:"retry,omitempty"`
}

// DefaultRetry retries a failing delivery for about ten minutes.
var DefaultRetry = actions.Retry{MaximumAttempts: 10, InitialInterval: "1s", BackoffCoefficient: 2, MaximumInterval: "2m"}

// Delivery is the record of one (automation, event) delivery.
type Delivery struct {
	// ID is the causing event's stream id (a schedule's: its firing).
	ID         string        `json:"id"`
	Automation string        `json:"automation"`
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`
	Attempts   int           `json:"attempts,omitempty"`
	Event      DeliveryEvent `json:"event"`
	Run        string        `json:"run,omitempty"` // the started action run
	StartedAt  time.Time     `json:"startedAt"`
	UpdatedAt  time.Time     `json:"updatedAt"`
	EndedAt    *time.Time    `json:"endedAt,omitempty"`
}

// DeliveryEvent names the event that caused a delivery.
type DeliveryEvent struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Blueprint  string    `json:"blueprint,omitempty"`
	Identifier string    `json:"identifier,omitempty"`
	Depth      int       `json:"depth,omitempty"`
	At         time.Time `json:"at"`
}

// Request is what a Starter starts: the delivery of one event (carried
// whole: the input the condition saw is rebuilt from it) to one
// automation.
type Request struct {
	Automation string        `json:"automation"`
	Event      catalog.Event `json:"event"`
	// Retry is the automation's retry policy when it was dispatched.
	Retry actions.Retry `json:"retry"`
}

// DeliveryID is the id of (automation, event): the Starter's
// deterministic key (a Temporal workflow id), so a delivery started
// twice runs once.
func DeliveryID(automation, eventID string) string {
	return "automation/" + automation + "/" + eventID
}

// Input is what conditions and templates see.
type Input struct {
	Trigger json.RawMessage `json:"trigger"`
	Diff    Diff            `json:"diff"`
	Entity  json.RawMessage `json:"entity"`
}

// Diff is an event's entity before and after.
type Diff struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// InputOf builds the input of an event: entity is the entity after the
// change, or before it for a deletion.
func InputOf(ev catalog.Event) (any, error) {
	trig, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	in := Input{Trigger: trig, Diff: Diff{Before: orNull(ev.Before), After: orNull(ev.After)}, Entity: orNull(ev.After)}
	if ev.Type == catalog.EventEntityDeleted || string(in.Entity) == "null" {
		in.Entity = in.Diff.Before
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var v any
	return v, json.Unmarshal(raw, &v)
}

func orNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}
