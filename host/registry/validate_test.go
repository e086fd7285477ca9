package registry_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/registry"
	"github.com/portico-dev/portico/pdk"
)

// TestValidateRefusesProtectedBlueprints: a plugin cannot declare _user,
// _team or any other protected blueprint (it would become its lane).
func TestValidateRefusesProtectedBlueprints(t *testing.T) {
	for _, tt := range []struct {
		blueprint string
		ok        bool
	}{
		{`{"identifier": "service"}`, true},
		{`{"identifier": "_user"}`, false},
		{`{"identifier": "_audit"}`, false},
	} {
		info := &pdk.Info{Name: "p", Version: "0.1.0", Blueprints: []json.RawMessage{json.RawMessage(tt.blueprint)}}
		err := registry.Validate(info)
		var verr *catalog.ValidationError
		if tt.ok != (err == nil) || err != nil && (!errors.As(err, &verr) || verr.Violations[0].Path != "/info/blueprints/0") {
			t.Errorf("%s: %v, want ok=%v", tt.blueprint, err, tt.ok)
		}
	}
}
