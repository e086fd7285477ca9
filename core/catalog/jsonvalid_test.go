package catalog

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzJSONValid checks jsonValid against encoding/json.Valid.
func FuzzJSONValid(f *testing.F) {
	for _, s := range jsonValidCases {
		f.Add([]byte(s))
	}
	f.Add([]byte(schemaBenchEntity))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := jsonValid(data), json.Valid(data); got != want {
			t.Fatalf("jsonValid(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

var jsonValidCases = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5e`, `1.5e+3`, `1E-2`, `.5`, `+1`,
	`true`, `tru`, `nulll`, `null x`, `{"a":1,}`, `[1,]`, `[1 2]`, `{"a" 1}`, `{"a":}`, `{1:2}`,
	`"\u00e9\n\/"`, `"\u12g4"`, `"\x"`, "\"a\tb\"", "\"\x7f\xff\"", ` [ { "a" : [ null , false ] } ] `,
	`"unterminated`, `{"a":"b"`, `[[[]]]`, "\"\\", "[\r\n1\t]",
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
}

func TestJSONValid(t *testing.T) {
	for _, s := range jsonValidCases {
		if got, want := jsonValid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("jsonValid(%.40q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

func BenchmarkJSONValid(b *testing.B) {
	data := []byte(schemaBenchEntity)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		jsonValid(data)
	}
}
