package actions

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/internal/jqeval"
)

// ParseDuration is time.ParseDuration plus a days suffix ("3d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

type problems struct{ list []catalog.Violation }

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, catalog.Violation{Path: path, Message: fmt.Sprintf(format, args...)})
}

// addErr adds err's violations (or its message at path).
func (p *problems) addErr(path string, err error) {
	if err == nil {
		return
	}
	if verr, ok := err.(*catalog.ValidationError); ok && len(verr.Violations) > 0 {
		p.list = append(p.list, verr.Violations...)
		return
	}
	p.add(path, "%s", err.Error())
}

func (p *problems) err(msg string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &catalog.ValidationError{Message: msg, Violations: p.list}
}

func (p *problems) duration(path, s string, required bool) {
	if s == "" {
		if required {
			p.add(path, "required")
		}
		return
	}
	if _, err := ParseDuration(s); err != nil {
		p.add(path, "%s", err.Error())
	}
}

func (p *problems) jq(path, expr string) {
	if expr == "" {
		return
	}
	if _, err := jqeval.Compile(expr, jqeval.Limits{}); err != nil {
		p.add(path, "invalid jq: %s", err.Error())
	}
}

func (p *problems) policy(path string, pol *access.Policy) {
	if pol != nil {
		p.addErr(path, pol.Compile(path))
	}
}

func (p *problems) httpURL(path, raw string) {
	u, err := url.Parse(raw)
	if raw == "" {
		p.add(path, "required")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path, "must be an absolute http(s) URL")
	}
}

func (p *problems) retry(path string, r *Retry) {
	if r == nil {
		return
	}
	if r.MaximumAttempts < 0 {
		p.add(path+"/maximumAttempts", "must be at least 0")
	}
	if r.BackoffCoefficient != 0 && r.BackoffCoefficient < 1 {
		p.add(path+"/backoffCoefficient", "must be at least 1")
	}
	p.duration(path+"/initialInterval", r.InitialInterval, false)
	p.duration(path+"/maximumInterval", r.MaximumInterval, false)
}

func (p *problems) approval(path string, a Approval) {
	if a.Count < 0 {
		p.add(path+"/count", "must be at least 1")
	}
	p.policy(path+"/approvers", a.Approvers)
	p.duration(path+"/timeout", a.Timeout, false)
	switch a.OnTimeout {
	case "", "decline":
	case "escalate":
		if a.Escalation == nil || a.Escalation.Approvers == nil {
			p.add(path+"/escalation", "onTimeout escalate needs escalation approvers")
		}
		if a.Timeout == "" {
			p.add(path+"/timeout", "onTimeout escalate needs a timeout")
		}
	default:
		p.add(path+"/onTimeout", "must be decline or escalate")
	}
	if a.Escalation != nil {
		p.policy(path+"/escalation/approvers", a.Escalation.Approvers)
		p.duration(path+"/escalation/timeout", a.Escalation.Timeout, false)
	}
}

// Validate checks an action definition on its own; references to the
// blueprint and a workflow are checked by the Service.
func (a *Action) Validate() error {
	var p problems
	if !catalog.IdentifierPattern.MatchString(a.Identifier) {
		p.add("/identifier", "must match %s", catalog.IdentifierPattern)
	}
	if a.Blueprint == "" {
		p.add("/blueprint", "required")
	}
	switch a.Operation {
	case OperationCreate, OperationDay2, OperationDelete:
	case "":
		p.add("/operation", "required (CREATE, DAY-2 or DELETE)")
	default:
		p.add("/operation", "must be CREATE, DAY-2 or DELETE")
	}
	if a.UserInputs != nil {
		if _, err := compileInputs(a.UserInputs); err != nil {
			p.addErr("/userInputs", err)
		}
	}
	if a.Condition != nil {
		p.addErr("/condition", a.Condition.Validate("/condition"))
	}
	inv := a.Invocation
	switch inv.Type {
	case InvokeWebhook:
		p.httpURL("/invocation/url", inv.URL)
		p.jq("/invocation/body", inv.Body)
	case InvokePlugin:
		if inv.Integration == "" {
			p.add("/invocation/integration", "required")
		}
		if inv.Action == "" {
			p.add("/invocation/action", "required")
		}
		p.jq("/invocation/inputs", inv.Inputs)
	case InvokeWorkflow:
		if inv.Workflow == "" {
			p.add("/invocation/workflow", "required")
		}
	case InvokeUpdate:
		if inv.Patch == "" {
			p.add("/invocation/patch", "required: a jq expression yielding a merge patch of the entity")
		}
		p.jq("/invocation/patch", inv.Patch)
		if a.Operation == OperationCreate {
			p.add("/invocation/type", "an update invocation patches an existing entity: use it with DAY-2 or DELETE actions")
		}
	case "":
		p.add("/invocation/type", "required (webhook, plugin, workflow or update)")
	default:
		p.add("/invocation/type", "must be webhook, plugin, workflow or update")
	}
	p.retry("/invocation/retry", inv.Retry)
	if a.Approval != nil {
		p.approval("/approval", *a.Approval)
		if a.Operation == OperationCreate {
			if ap := a.Approval.Approvers; ap != nil && ap.OwningTeam {
				p.add("/approval/approvers/owningTeam", "a CREATE action has no entity whose owning team could approve")
			}
			if esc := a.Approval.Escalation; esc != nil && esc.Approvers != nil && esc.Approvers.OwningTeam {
				p.add("/approval/escalation/approvers/owningTeam", "a CREATE action has no entity whose owning team could approve")
			}
		}
	}
	if a.Permissions != nil {
		p.policy("/permissions/execute", a.Permissions.Execute)
		p.policy("/permissions/approve", a.Permissions.Approve)
	}
	return p.err("invalid action")
}

// stepRefPattern finds references to earlier steps' results in jq.
var stepRefPattern = regexp.MustCompile(`\.steps\.([A-Za-z0-9_]+)|\.steps\["([^"]+)"\]`)

// Validate checks a composed workflow: known step types and their fields,
// unique step ids, no dangling references (dependsOn, ".steps.<id>" in
// jq) and no dependency cycles.
func (w *Workflow) Validate() error {
	var p problems
	if !catalog.IdentifierPattern.MatchString(w.Identifier) {
		p.add("/identifier", "must match %s", catalog.IdentifierPattern)
	}
	if len(w.Steps) == 0 {
		p.add("/steps", "at least one step is required")
	}
	ids := map[string]string{} // id -> path
	collectIDs(w.Steps, "/steps", ids, &p)
	collectIDs(w.OnFailure, "/onFailure", ids, &p)
	v := &stepValidator{p: &p, ids: ids}
	v.sequence(w.Steps, "/steps", map[string]bool{})
	v.sequence(w.OnFailure, "/onFailure", allIDs(w.Steps))
	return p.err("invalid workflow")
}

func collectIDs(steps []Step, path string, ids map[string]string, p *problems) {
	for i := range steps {
		s := &steps[i]
		sp := path + "/" + strconv.Itoa(i)
		switch {
		case s.ID == "":
			p.add(sp+"/id", "required")
		case !catalog.IdentifierPattern.MatchString(s.ID):
			p.add(sp+"/id", "must match %s", catalog.IdentifierPattern)
		case ids[s.ID] != "":
			p.add(sp+"/id", "duplicate step id %q (also at %s)", s.ID, ids[s.ID])
		default:
			ids[s.ID] = sp
		}
		collectIDs(s.Steps, sp+"/steps", ids, p)
		collectIDs(s.OnFailure, sp+"/onFailure", ids, p)
	}
}

func allIDs(steps []Step) map[string]bool {
	out := map[string]bool{}
	var walk func([]Step)
	walk = func(ss []Step) {
		for _, s := range ss {
			out[s.ID] = true
			walk(s.Steps)
		}
	}
	walk(steps)
	return out
}

type stepValidator struct {
	p   *problems
	ids map[string]string
}

// sequence validates ordered steps; done holds the ids finished before
// the first of them.
func (v *stepValidator) sequence(steps []Step, path string, done map[string]bool) {
	seen := cloneSet(done)
	for i := range steps {
		s := &steps[i]
		sp := path + "/" + strconv.Itoa(i)
		for j, d := range s.DependsOn {
			if !seen[d] {
				v.p.add(sp+"/dependsOn/"+strconv.Itoa(j), "%q is not an earlier step", d)
			}
		}
		v.step(s, sp, seen)
		for id := range allIDs([]Step{*s}) {
			seen[id] = true
		}
	}
}

// group validates a parallel group: its steps may depend on each other
// (without cycles) and on whatever finished before the group.
func (v *stepValidator) group(steps []Step, path string, done map[string]bool) {
	index := map[string]int{}
	for i, s := range steps {
		index[s.ID] = i
	}
	for i := range steps {
		s := &steps[i]
		sp := path + "/" + strconv.Itoa(i)
		for j, d := range s.DependsOn {
			if _, sibling := index[d]; !sibling && !done[d] {
				v.p.add(sp+"/dependsOn/"+strconv.Itoa(j), "unknown step %q", d)
			}
		}
	}
	if cycle := findCycle(steps, index); cycle != "" {
		v.p.add(path, "dependency cycle: %s", cycle)
		return
	}
	for i := range steps {
		s := &steps[i]
		avail := cloneSet(done)
		for _, d := range Ancestors(steps, i) {
			for id := range allIDs([]Step{steps[d]}) {
				avail[id] = true
			}
		}
		v.step(s, path+"/"+strconv.Itoa(i), avail)
	}
}

// Ancestors returns the indexes of the steps steps[i] transitively
// depends on within its group, in ascending order.
func Ancestors(steps []Step, i int) []int {
	index := map[string]int{}
	for k, s := range steps {
		index[s.ID] = k
	}
	seen := map[int]bool{}
	var visit func(int)
	visit = func(k int) {
		for _, d := range steps[k].DependsOn {
			if j, ok := index[d]; ok && !seen[j] {
				seen[j] = true
				visit(j)
			}
		}
	}
	visit(i)
	out := make([]int, 0, len(seen))
	for k := range steps {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out
}

func findCycle(steps []Step, index map[string]int) string {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(steps))
	var stack []string
	var found string
	var visit func(int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, steps[i].ID)
		for _, d := range steps[i].DependsOn {
			j, ok := index[d]
			if !ok {
				continue
			}
			if color[j] == grey {
				found = strings.Join(append(stack, d), " -> ")
				return true
			}
			if color[j] == white && visit(j) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range steps {
		if color[i] == white && visit(i) {
			return found
		}
	}
	return ""
}

func cloneSet(in map[string]bool) map[string]bool {
	out := make(map[string]bool, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// refs checks that jq expr only reads results of available steps.
func (v *stepValidator) refs(path, expr string, avail map[string]bool) {
	if expr == "" {
		return
	}
	v.p.jq(path, expr)
	for _, m := range stepRefPattern.FindAllStringSubmatch(expr, -1) {
		id := m[1] + m[2]
		switch {
		case v.ids[id] == "":
			v.p.add(path, "references unknown step %q", id)
		case !avail[id]:
			v.p.add(path, "references step %q, which has not finished by then", id)
		}
	}
}

func (v *stepValidator) step(s *Step, sp string, avail map[string]bool) {
	p := v.p
	switch s.Kind() {
	case StepApproval:
		p.approval(sp, s.ApprovalPolicy())
	case StepWebhook:
		p.httpURL(sp+"/url", s.URL)
		v.refs(sp+"/body", s.Body, avail)
		p.duration(sp+"/timeout", s.Timeout, false)
	case StepPlugin:
		if s.Integration == "" {
			p.add(sp+"/integration", "required")
		}
		if s.Action == "" {
			p.add(sp+"/action", "required")
		}
		v.refs(sp+"/inputs", s.Inputs, avail)
		p.duration(sp+"/timeout", s.Timeout, false)
	case StepSleep:
		p.duration(sp+"/duration", s.Duration, true)
	case StepUpdate:
		if s.Patch == "" {
			p.add(sp+"/patch", "required: a jq expression yielding a merge patch of the entity")
		}
		v.refs(sp+"/patch", s.Patch, avail)
		if s.Entity != nil {
			v.selector(sp+"/entity", s.Entity, avail)
		}
		p.duration(sp+"/timeout", s.Timeout, false)
	case StepWait:
		if s.Entity == nil {
			p.add(sp+"/entity", "blueprint and identifier are required")
		} else {
			v.selector(sp+"/entity", s.Entity, avail)
		}
		if s.Until == nil {
			p.add(sp+"/until", "required")
		} else {
			p.addErr(sp+"/until", s.Until.Validate(sp+"/until"))
		}
		p.duration(sp+"/timeout", s.Timeout, true)
		p.duration(sp+"/pollInterval", s.PollInterval, false)
	case StepParallel:
		if len(s.Steps) == 0 {
			p.add(sp+"/steps", "a parallel step needs steps")
		}
		v.group(s.Steps, sp+"/steps", avail)
	case "":
		p.add(sp+"/type", "required")
	default:
		p.add(sp+"/type", "unknown step type %q (approval, webhook, plugin, action, update, wait, sleep, parallel)", s.Type)
	}
	if s.Type == StepAction && s.URL == "" && s.Integration == "" {
		p.add(sp, "an action step needs a url (webhook) or an integration (plugin)")
	}
	p.retry(sp+"/retry", s.Retry)
	v.sequence(s.OnFailure, sp+"/onFailure", avail)
}

// selector checks an entity selector's fields.
func (v *stepValidator) selector(path string, e *EntitySelector, avail map[string]bool) {
	if e.Blueprint == "" || e.Identifier == "" {
		v.p.add(path, "blueprint and identifier are required")
		return
	}
	v.refs(path+"/blueprint", literalOrJQ(e.Blueprint), avail)
	v.refs(path+"/identifier", literalOrJQ(e.Identifier), avail)
}

// literalOrJQ returns the jq expression a selector field stands for: a
// plain identifier is a string literal.
func literalOrJQ(s string) string {
	if catalog.IdentifierPattern.MatchString(s) && !strings.HasPrefix(s, ".") {
		return strconv.Quote(s)
	}
	return s
}

// LiteralOrJQ is the jq expression an EntitySelector field stands for.
func LiteralOrJQ(s string) string { return literalOrJQ(s) }
