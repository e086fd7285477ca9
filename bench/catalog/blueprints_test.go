package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestSettleWaitsUntilTheChangeIsGone(t *testing.T) {
	tests := []struct {
		name       string
		busyGETs   int32 // GETs answered with a change in progress
		seenOnPut  bool
		wantWaited bool
	}{
		{"no change anywhere", 0, false, false},
		{"change on GETs", 3, false, true},
		{"change only on the PUT's answer", 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gets atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if gets.Add(1) <= tt.busyGETs {
					_, _ = w.Write([]byte(`{"identifier":"service","change":{"phase":"backfilling","done":1,"total":9}}`))
					return
				}
				_, _ = w.Write([]byte(`{"identifier":"service"}`))
			}))
			defer srv.Close()
			c := newClient()
			c.base = srv.URL

			waited := settle(c, tt.seenOnPut)
			if (waited > 0) != tt.wantWaited {
				t.Errorf("settle = %v, want waited %v", waited, tt.wantWaited)
			}
			if got := gets.Load(); got != tt.busyGETs+1 {
				t.Errorf("%d GETs, want %d (until the change is gone)", got, tt.busyGETs+1)
			}
		})
	}
}

func TestOffendersCountsListedEntitiesThatHaveARunbook(t *testing.T) {
	body := []byte(`{"error":{"code":"validation_failed","details":[
		{"path":"/entities/svc-0000999/properties/runbook","message":"required"},
		{"path":"/entities/svc-0000999/properties/other","message":"twice, counted once"},
		{"path":"/entities/svc-0001999/properties/runbook","message":"required"},
		{"path":"/entities/svc-0000005/properties/runbook","message":"has one"},
		{"path":"/schema/required","message":"not an entity"}]}}`)
	listed, wrong := offenders(body)
	if len(listed) != 3 || wrong != 1 {
		t.Errorf("listed %v, wrong %d; want 3 listed, 1 wrong (svc-0000005)", listed, wrong)
	}
}
