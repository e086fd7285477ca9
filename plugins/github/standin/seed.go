package standin

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed testdata/rest/*.json testdata/webhooks/*.json
var fixtures embed.FS

// Payload returns the bytes of a webhook fixture, e.g. Payload("workflow_run.completed")
// for testdata/webhooks/workflow_run.completed.payload.json, exactly as published.
func Payload(name string) []byte {
	b, err := fixtures.ReadFile("testdata/webhooks/" + name + ".payload.json")
	if err != nil {
		panic(fmt.Sprintf("standin: no webhook fixture %q", name))
	}
	return b
}

func restFixture(name string) map[string]any {
	b, err := fixtures.ReadFile("testdata/rest/" + name + ".json")
	if err != nil {
		panic(err)
	}
	return decode(b)
}

func decode(b []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // ids stay exact
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic(fmt.Sprintf("standin: fixture: %v", err))
	}
	return m
}

// clone deep-copies a JSON object, replacing every occurrence of the
// strings in replace (old, new pairs) on the way: repository names in URLs.
func clone(m map[string]any, replace ...string) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	if len(replace) > 0 {
		b = []byte(strings.NewReplacer(replace...).Replace(string(b)))
	}
	return decode(b)
}

// Seeded data, built from the fixtures (see testdata/SOURCES.md):
//
//   - octo-org/octo-repo (repository, workflow 2823525 "test" and run
//     289782451, queued, of the workflow_run.requested payload: the
//     workflow_run.completed payload completes it);
//   - hub4j-test-org/GHWorkflowTest (workflow 6817859 of the REST listing);
//   - hub4j-test-org/GHWorkflowRunTest (runs 7890467516, 686039314 and
//     677006583 of the REST listings, and their workflows 7433027 and 6820790);
//   - Codertocat/Hello-World (deployment 145988746 with its status 209916254
//     of the deployment_status payload, and run 2202229078, in progress, of
//     workflow 2202229000 "CodeQL", which the workflow_job payloads name).
//
// Objects the fixtures lack (repositories of the hub4j organization, the
// workflows of runs, the CodeQL run) are clones of fixture objects with
// names and ids rewritten.
func (s *Server) seed() {
	requested := decode(Payload("workflow_run.requested"))
	octo := requested["repository"].(map[string]any)
	s.addRepository(octo)
	s.addWorkflow("octo-org/octo-repo", requested["workflow"].(map[string]any))
	s.addRun("octo-org/octo-repo", requested["workflow_run"].(map[string]any))

	for i, name := range []string{"GHWorkflowTest", "GHWorkflowRunTest"} {
		s.addRepository(cloneRepository(octo, "hub4j-test-org/"+name, 348674220+int64(i)))
	}
	wfs := restFixture("list-repo-workflows")["workflows"].([]any)
	wfTemplate := wfs[0].(map[string]any)
	s.addWorkflow("hub4j-test-org/GHWorkflowTest", wfTemplate)
	var runs []any
	runs = append(runs, restFixture("list-workflow-runs.per_page-1")["workflow_runs"].([]any)...)
	runs = append(runs, restFixture("list-workflow-runs.branch-filter")["workflow_runs"].([]any)...)
	for _, r := range runs {
		run := r.(map[string]any)
		const repo = "hub4j-test-org/GHWorkflowRunTest"
		if s.workflow(repo, run["workflow_id"].(json.Number).String()) == nil {
			s.addWorkflow(repo, workflowOf(wfTemplate, "hub4j-test-org/GHWorkflowTest", run))
		}
		s.addRun(repo, run)
	}

	status := decode(Payload("deployment_status"))
	const hello = "Codertocat/Hello-World"
	s.addRepository(status["repository"].(map[string]any))
	d := s.addDeployment(hello, status["deployment"].(map[string]any))
	d.statuses = append(d.statuses, newObject(status["deployment_status"].(map[string]any)))
	job := decode(Payload("workflow_job.in_progress"))["workflow_job"].(map[string]any)
	codeql := clone(requested["workflow"].(map[string]any), "octo-org/octo-repo", hello, "test.yml", "codeql.yml", "workflows/test/", "workflows/CodeQL/")
	codeql["id"], codeql["name"], codeql["node_id"] = json.Number("2202229000"), job["workflow_name"], "W_standin_codeql"
	codeql["url"] = "https://api.github.com/repos/" + hello + "/actions/workflows/2202229000"
	s.addWorkflow(hello, codeql)
	run := clone(requested["workflow_run"].(map[string]any), "octo-org/octo-repo", hello, "289782451", "2202229078", "test.yml", "codeql.yml")
	run["repository"] = clone(run["repository"].(map[string]any), "octo-org", "Codertocat")
	run["workflow_id"], run["name"], run["status"] = json.Number("2202229000"), job["workflow_name"], "in_progress"
	run["head_sha"], run["head_branch"] = job["head_sha"], job["head_branch"]
	s.addRun(hello, run)
}

// cloneRepository makes a repository object for fullName from another.
func cloneRepository(template map[string]any, fullName string, id int64) map[string]any {
	from := template["full_name"].(string)
	owner, name, _ := strings.Cut(fullName, "/")
	r := clone(template, from, fullName)
	r["name"] = name
	r["node_id"] = "R_standin_" + name
	r["id"] = json.Number(fmt.Sprint(id))
	if o, ok := r["owner"].(map[string]any); ok {
		o["login"] = owner
	}
	return r
}

// workflowOf makes the workflow object of a run from a template workflow
// of repository templateRepo.
func workflowOf(template map[string]any, templateRepo string, run map[string]any) map[string]any {
	repo := run["repository"].(map[string]any)["full_name"].(string)
	w := clone(template, templateRepo, repo)
	id := run["workflow_id"].(json.Number)
	path, _ := run["path"].(string)
	if path == "" { // runs recorded before 2021-04 carry no path
		path = ".github/workflows/" + strings.ToLower(strings.ReplaceAll(run["name"].(string), " ", "-")) + ".yml"
	}
	w["id"], w["name"], w["path"] = id, run["name"], path
	w["node_id"] = "W_standin_" + id.String()
	w["url"] = "https://api.github.com/repos/" + repo + "/actions/workflows/" + id.String()
	w["html_url"] = "https://github.com/" + repo + "/blob/main/" + path
	return w
}
